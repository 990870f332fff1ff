"""Token exchange with the tenant: the public module (on-behalf-of, Custom Token Exchange,
Token Vault, and the ``OnBehalfOf`` auth for outgoing requests).

It only re-exports: the exchange itself is :mod:`.on_behalf_of`, the ``requests``/``httpx`` side
is :mod:`.downstream`. Both import the implementation directly, never this module, so the public
path ``django_auth0_obo.exchange.X`` names the same objects without an import cycle.
"""

from __future__ import annotations

from django_auth0_obo.downstream import OnBehalfOf
from django_auth0_obo.on_behalf_of import (
    GRANT_FEDERATED_CONNECTION,
    GRANT_TOKEN_EXCHANGE,
    TOKEN_TYPE_ACCESS_TOKEN,
    TOKEN_TYPE_FEDERATED,
    ConnectionTokenResult,
    OnBehalfOfTokenResult,
    TokenExchangeResult,
    VerifiedSubject,
    aget_access_token_for_connection,
    aget_token_by_exchange_profile,
    aget_token_on_behalf_of,
    forget_token_on_behalf_of,
    get_access_token_for_connection,
    get_token_by_exchange_profile,
    get_token_on_behalf_of,
)

__all__ = [
    "GRANT_FEDERATED_CONNECTION",
    "GRANT_TOKEN_EXCHANGE",
    "TOKEN_TYPE_ACCESS_TOKEN",
    "TOKEN_TYPE_FEDERATED",
    "ConnectionTokenResult",
    "OnBehalfOf",
    "OnBehalfOfTokenResult",
    "TokenExchangeResult",
    "VerifiedSubject",
    "aget_access_token_for_connection",
    "aget_token_by_exchange_profile",
    "aget_token_on_behalf_of",
    "forget_token_on_behalf_of",
    "get_access_token_for_connection",
    "get_token_by_exchange_profile",
    "get_token_on_behalf_of",
]

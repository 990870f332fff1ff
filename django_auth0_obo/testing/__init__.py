"""A local stand-in for an Auth0 tenant, for the app's tests and for users' own test suites.

Start a :class:`LocalTenant` (real HTTPS on 127.0.0.1), point ``AUTH0_OBO`` at it with
:meth:`LocalTenant.django_settings`, mint tokens with :meth:`LocalTenant.mint` and write DPoP
proofs with :class:`DPoPKey`. With pytest, the ``auth0_tenant`` fixture does all of that.

Names are imported lazily: pytest loads this package's plugin in every project that installs the
app, and that must not cost the import of pyjwt and cryptography.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_auth0_obo.testing.config import (
        APP_CLIENT_ID,
        CALENDAR_API,
        DEFAULT_AUDIENCE,
        DEFAULT_CLIENT_ID,
        DEFAULT_CONNECTION,
        GRANT_CLIENT_CREDENTIALS,
        GRANT_FEDERATED,
        GRANT_TOKEN_EXCHANGE,
        MCP_API,
        TOKEN_TYPE_ACCESS_TOKEN,
        TOKEN_TYPE_FEDERATED,
        ApiConfig,
        ClientConfig,
        ConnectionConfig,
        ExchangeProfileError,
    )
    from django_auth0_obo.testing.dpop_client import DPoPClient
    from django_auth0_obo.testing.jwk_encoding import access_token_hash, jwk_thumbprint
    from django_auth0_obo.testing.jws import (
        REMOVE,
        decode_unverified,
        sign_hs256_raw,
        tamper_header,
        tamper_payload,
        tamper_signature,
        unsigned_token,
    )
    from django_auth0_obo.testing.proofs import DPoPKey
    from django_auth0_obo.testing.state import FederatedToken, TokenRequest
    from django_auth0_obo.testing.tenant import LocalTenant

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        [
            "APP_CLIENT_ID",
            "CALENDAR_API",
            "DEFAULT_AUDIENCE",
            "DEFAULT_CLIENT_ID",
            "DEFAULT_CONNECTION",
            "MCP_API",
            "ApiConfig",
            "ClientConfig",
            "ConnectionConfig",
            "ExchangeProfileError",
            "GRANT_CLIENT_CREDENTIALS",
            "GRANT_FEDERATED",
            "GRANT_TOKEN_EXCHANGE",
            "TOKEN_TYPE_ACCESS_TOKEN",
            "TOKEN_TYPE_FEDERATED",
        ],
        "config",
    ),
    "DPoPKey": "proofs",
    "DPoPClient": "dpop_client",
    "access_token_hash": "jwk_encoding",
    "jwk_thumbprint": "jwk_encoding",
    **dict.fromkeys(
        [
            "REMOVE",
            "decode_unverified",
            "sign_hs256_raw",
            "tamper_header",
            "tamper_payload",
            "tamper_signature",
            "unsigned_token",
        ],
        "jws",
    ),
    "FederatedToken": "state",
    "TokenRequest": "state",
    "LocalTenant": "tenant",
}

__all__ = [
    "APP_CLIENT_ID",
    "CALENDAR_API",
    "DEFAULT_AUDIENCE",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CONNECTION",
    "GRANT_CLIENT_CREDENTIALS",
    "GRANT_FEDERATED",
    "GRANT_TOKEN_EXCHANGE",
    "MCP_API",
    "REMOVE",
    "TOKEN_TYPE_ACCESS_TOKEN",
    "TOKEN_TYPE_FEDERATED",
    "ApiConfig",
    "ClientConfig",
    "ConnectionConfig",
    "DPoPClient",
    "DPoPKey",
    "ExchangeProfileError",
    "FederatedToken",
    "LocalTenant",
    "TokenRequest",
    "access_token_hash",
    "decode_unverified",
    "jwk_thumbprint",
    "sign_hs256_raw",
    "tamper_header",
    "tamper_payload",
    "tamper_signature",
    "unsigned_token",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])

"""What a failed exchange means to the API's caller: one table, for every boundary.

A :class:`~django_auth0_obo.exceptions.TokenExchangeError` keeps the tenant's own words; the
caller of the API that tried to exchange needs something else: a status that says whose problem
it is, and a stable machine-readable ``code``. :func:`describe` decides by what the tenant meant
(its HTTP status), then refines by its ``error`` code:

======================================================  ======  ===========================
the tenant answered                                      status  ``code``
======================================================  ======  ===========================
400/401/403 ``invalid_grant`` (subject token rejected)   403     ``subject_token_rejected``
400 ``invalid_request`` for a chain already at 5 levels  403     ``delegation_depth_exceeded``
``unauthorized_client`` (client may not exchange)        403     ``client_not_allowed``
``invalid_target`` (audience not granted)                403     ``audience_not_allowed``
``invalid_scope`` (scope not granted)                    403     ``scope_not_granted``
any other 400/401/403 (``access_denied``, ...)           403     ``delegation_refused``
Token Vault ``*_not_found`` (account not linked)         403     ``connection_required``
``invalid_client``; 400/401 blaming this API's own       502     ``exchange_failed``
request (``invalid_request``, ...); logged at ERROR,
hidden from callers
429                                                      503     ``rate_limited``
no answer in time (``HTTP_TIMEOUT``, whole call)         504     ``tenant_timeout``
unreachable                                              502     ``tenant_unreachable``
a malformed, oversized or untrustworthy answer           502     ``invalid_response``
5xx (503 with ``Retry-After``: 503)                      502     ``tenant_error``
======================================================  ======  ===========================

Every 503 carries ``Retry-After`` (from ``Retry-After`` or Auth0's ``x-ratelimit-reset``; 1 s
when the tenant gave neither). Framework-free: the DRF handler and any other boundary render the
same :class:`ExchangeFailure`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from django_auth0_obo.exceptions import TokenExchangeError

#: Auth0's documented limit on nested ``act`` levels: a subject token already this deep cannot
#: be exchanged again (the tenant answers 400 ``invalid_request``).
AUTH0_MAX_DELEGATION_DEPTH = 5

#: Tenant error codes and the stable ``code`` of the refusal they mean.
REFUSAL_CODES = {
    "invalid_grant": "subject_token_rejected",
    "unauthorized_client": "client_not_allowed",
    "invalid_target": "audience_not_allowed",
    "invalid_scope": "scope_not_granted",
}

#: Token Vault errors meaning "the user has not linked this connection"; any other
#: ``…_not_found`` error of a Token Vault exchange is read the same way.
CONNECTION_NOT_LINKED_ERRORS = frozenset(
    {"federated_connection_refresh_token_not_found", "tokenset_not_found"}
)

#: Tenant errors that blame this API's own request or configuration, not the caller.
OWN_CONFIGURATION_ERRORS = frozenset(
    {
        "invalid_client",
        "unsupported_grant_type",
        "unsupported_token_type",
        "invalid_request",
        "invalid_dpop_proof",
        "use_dpop_nonce",
        "unbound_token",  # OnBehalfOf: the downstream API is not set up for DPoP binding
    }
)

#: Codes of our own transport failures (:class:`TransportFailure`, see :mod:`.token_endpoint`).
_TRANSPORT = {
    "timeout": (504, "tenant_timeout"),
    "connection_error": (502, "tenant_unreachable"),
    "invalid_response": (502, "invalid_response"),
}
_GENERIC_DESCRIPTION = "The authorization server could not complete the token exchange."


class TransportFailure(TokenExchangeError):
    """No usable answer from the token endpoint: none in time, unreachable, or one we cannot read.

    Raised only by the exchange client itself, so :func:`describe` knows it by type: the tenant
    can put any ``error`` in a refusal, ``"timeout"`` included, and that stays a refusal.
    """


@dataclass(frozen=True)
class ExchangeFailure:
    """How the API answers its caller when an exchange failed."""

    status: int
    code: str
    error: str
    description: str
    retry_after: int | None = None
    connection: str | None = None
    #: How loudly the failure is logged: ERROR when the operator must fix something.
    log_level: int = logging.WARNING

    def body(self) -> dict[str, str]:
        body = {"error": self.error, "error_description": self.description, "code": self.code}
        if self.connection is not None:
            body["connection"] = self.connection
        return body

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def describe(error: TokenExchangeError) -> ExchangeFailure:
    """The answer for ``error`` (see the table above)."""
    status, code = error.status_code, error.error
    if status == 429:
        return _unavailable(error, "rate_limited")
    if isinstance(error, TransportFailure):
        answer_status, stable = _TRANSPORT.get(code, (502, "invalid_response"))
        return ExchangeFailure(answer_status, stable, code, error.error_description)
    if error.connection is not None and _not_linked(code):
        return ExchangeFailure(
            403,
            "connection_required",
            code,
            f"The user has not connected {error.connection}; connect it and retry.",
            connection=error.connection,
        )
    if code == "invalid_request" and _depth_exceeded(error):
        return _refusal(error, "delegation_depth_exceeded")
    if code == "invalid_client" or (code in OWN_CONFIGURATION_ERRORS and status != 403):
        return ExchangeFailure(
            502, "exchange_failed", "server_error", _GENERIC_DESCRIPTION, log_level=logging.ERROR
        )
    if status in (400, 401, 403):
        return _refusal(error, REFUSAL_CODES.get(code, "delegation_refused"))
    if status == 503 and error.retry_after is not None:
        return _unavailable(error, "tenant_error")
    return ExchangeFailure(502, "tenant_error", code, error.error_description)


def _refusal(error: TokenExchangeError, code: str) -> ExchangeFailure:
    return ExchangeFailure(403, code, error.error, error.error_description)


def _unavailable(error: TokenExchangeError, code: str) -> ExchangeFailure:
    wait = error.retry_after
    seconds = max(1, math.ceil(wait)) if wait is not None and math.isfinite(wait) else 1
    return ExchangeFailure(503, code, error.error, error.error_description, retry_after=seconds)


def _not_linked(code: str) -> bool:
    return code in CONNECTION_NOT_LINKED_ERRORS or code.endswith("_not_found")


def _depth_exceeded(error: TokenExchangeError) -> bool:
    depth = error.delegation_depth
    return depth is not None and depth >= AUTH0_MAX_DELEGATION_DEPTH

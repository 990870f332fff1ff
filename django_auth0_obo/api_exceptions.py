"""The DRF boundary: core exceptions and our permissions' refusals become DRF exceptions with
stable codes and short messages, here and nowhere else."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response

from django_auth0_obo.exceptions import AuthenticationError, TenantUnavailable, TokenExchangeError

# The stable ``code`` of each refusal by our permissions (the README's permission table).
NOT_AN_AUTH0_TOKEN = "not_an_auth0_token"
DIRECT_TOKEN_NOT_ALLOWED = "direct_token_not_allowed"
ACTOR_NOT_ALLOWED = "actor_not_allowed"
ACTOR_AZP_MISMATCH = "actor_azp_mismatch"
DELEGATION_TOO_DEEP = "delegation_too_deep"
#: RFC 6750 §3.1: the token lacks a scope the request needs.
INSUFFICIENT_SCOPE = "insufficient_scope"

#: Refusals that concern the actor (they send ``actor_denied``).
ACTOR_REASONS = frozenset(
    {ACTOR_NOT_ALLOWED, DIRECT_TOKEN_NOT_ALLOWED, ACTOR_AZP_MISMATCH, DELEGATION_TOO_DEEP}
)


class Auth0AuthenticationFailed(exceptions.AuthenticationFailed):
    """401 (or 400 for ``invalid_request``) carrying the RFC error code of the core error."""

    def __init__(self, error: AuthenticationError) -> None:
        self.status_code = error.status_code
        self.auth0_error = error
        super().__init__(detail=error.description, code=error.error)


class Auth0PermissionDenied(exceptions.PermissionDenied):
    """403 whose body is ``{"detail": message, "code": code}``: one of our permissions refused."""

    def __init__(self, code: str, message: str) -> None:
        self.refusal_code = code
        super().__init__(detail={"detail": message, "code": code})


class InsufficientScope(Auth0PermissionDenied):
    """403 ``insufficient_scope`` with its ``WWW-Authenticate`` challenge (RFC 6750 §3.1)."""

    def __init__(self, message: str, auth_header: str) -> None:
        super().__init__(INSUFFICIENT_SCOPE, message)
        self.auth_header = auth_header


class ServiceUnavailable(exceptions.APIException):
    """The tenant's keys cannot be had: the request may succeed later (not an invalid token)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = TenantUnavailable.default_description
    default_code = TenantUnavailable.error


#: Tenant errors meaning "the tenant refused to delegate this user's access": answered 403.
#: ``invalid_target`` and ``invalid_scope`` are here too: the view asked for an audience or scope
#: the tenant will not grant this user through this client, which the caller cannot fix by
#: changing its request (a 400 would blame the caller's input).
DELEGATION_REFUSED_ERRORS = frozenset(
    {
        "invalid_grant",
        "access_denied",
        "unauthorized_client",
        "invalid_target",
        "invalid_scope",
        "consent_required",
        "interaction_required",
        "login_required",
    }
)


def token_exchange_response_status(error: TokenExchangeError) -> int:
    """The status a DRF view answers when ``error`` escapes it (see :func:`exception_handler`)."""
    if error.status_code == 429:
        return status.HTTP_503_SERVICE_UNAVAILABLE
    if error.error == "timeout" or error.status_code == status.HTTP_504_GATEWAY_TIMEOUT:
        return status.HTTP_504_GATEWAY_TIMEOUT
    if 400 <= error.status_code < 500 and error.error in DELEGATION_REFUSED_ERRORS:
        return status.HTTP_403_FORBIDDEN
    return status.HTTP_502_BAD_GATEWAY


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, plus answers for ``TokenExchangeError`` escaping a view.

    Install it with ``REST_FRAMEWORK["EXCEPTION_HANDLER"] =
    "django_auth0_obo.api_exceptions.exception_handler"``.
    The body is ``{"error": ..., "error_description": ...}`` with the tenant's words:

    - 403 when the tenant refused the delegation (``invalid_grant``, ``access_denied``,
      ``unauthorized_client``, ``invalid_target``, ``invalid_scope``, ...);
    - 503 with ``Retry-After`` when the tenant rate-limited the exchange (429);
    - 504 when the tenant did not answer in time;
    - 502 for everything else: tenant 5xx, connection failures, malformed answers, and 4xx that
      mean this API is misconfigured (``invalid_client``, ``invalid_request``, ...).
    """
    if isinstance(exc, TokenExchangeError):
        headers = {}
        if exc.status_code == 429 and exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        body = {"error": exc.error, "error_description": exc.error_description}
        return Response(body, status=token_exchange_response_status(exc), headers=headers)
    from rest_framework import views  # not at import time: DRF's views import authentication

    return views.exception_handler(exc, context)

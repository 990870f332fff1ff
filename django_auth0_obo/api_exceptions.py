"""The DRF boundary: core exceptions and our permissions' refusals become DRF exceptions with
stable codes and short messages, here and nowhere else."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response

from django_auth0_obo import exchange_errors
from django_auth0_obo.exceptions import AuthenticationError, TenantUnavailable, TokenExchangeError

# The stable ``code`` of each refusal by our permissions (the README's permission table).
NOT_AN_AUTH0_TOKEN = "not_an_auth0_token"
DIRECT_TOKEN_NOT_ALLOWED = "direct_token_not_allowed"
ACTOR_NOT_ALLOWED = "actor_not_allowed"
ACTOR_AZP_MISMATCH = "actor_azp_mismatch"
DELEGATION_TOO_DEEP = "delegation_too_deep"
#: RFC 6750 §3.1: the token lacks a scope the request needs.
INSUFFICIENT_SCOPE = "insufficient_scope"
#: A claim check (``claim_equals`` / ``claim_includes``) failed.
CLAIM_MISMATCH = "claim_mismatch"

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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, plus answers for ``TokenExchangeError`` escaping a view.

    Install it with ``REST_FRAMEWORK["EXCEPTION_HANDLER"] =
    "django_auth0_obo.api_exceptions.exception_handler"``.
    A failed exchange answers ``{"error", "error_description", "code"}`` (and ``connection``
    when the user must link a Token Vault connection) with the status and stable ``code`` of
    :func:`django_auth0_obo.exchange_errors.describe`: 403 when the tenant refused the
    delegation, 502/503/504 when it failed, 502 with a generic message when this API is
    misconfigured; every 503 carries ``Retry-After``.
    """
    if isinstance(exc, TokenExchangeError):
        failure = exchange_errors.describe(exc)
        return Response(failure.body(), status=failure.status, headers=failure.headers())
    from rest_framework import views  # not at import time: DRF's views import authentication

    return views.exception_handler(exc, context)

"""The DRF boundary: core exceptions become DRF exceptions with stable codes and short messages."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response

from django_auth0_obo import exchange_errors
from django_auth0_obo.exceptions import AuthenticationError, TenantUnavailable, TokenExchangeError


class Auth0AuthenticationFailed(exceptions.AuthenticationFailed):
    """401 (or 400 for ``invalid_request``) carrying the RFC error code of the core error."""

    def __init__(self, error: AuthenticationError) -> None:
        self.status_code = error.status_code
        self.auth0_error = error
        super().__init__(detail=error.description, code=error.error)


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

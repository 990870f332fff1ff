"""The DRF boundary: core exceptions become DRF exceptions with stable codes and short messages."""

from __future__ import annotations

from rest_framework import exceptions, status

from django_auth0_obo.exceptions import AuthenticationError, TenantUnavailable


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

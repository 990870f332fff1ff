"""Core exceptions: precise, framework-free, and safe to log.

Each carries an RFC error code (``error``), a short human ``description`` that never contains a
token, proof or secret, and the HTTP status the DRF layer should answer with. The DRF layer maps
them to responses in one place (``api_exceptions``).
"""

from __future__ import annotations

from typing import Any


class Auth0OboError(Exception):
    """Base class for everything this app raises on purpose."""

    error: str = "server_error"
    status_code: int = 500
    default_description: str = "Unexpected error."

    def __init__(self, description: str | None = None) -> None:
        self.description = description or self.default_description
        super().__init__(self.description)


class ConfigurationError(Auth0OboError):
    """The ``AUTH0_OBO`` settings cannot support the requested operation."""

    error = "configuration_error"
    default_description = "django_auth0_obo is not configured for this operation."


class AuthenticationError(Auth0OboError):
    """Credentials were presented and are not acceptable (RFC 6750 / RFC 9449 codes)."""

    #: Which challenge scheme the error belongs to ("Bearer" or "DPoP"); None for the first.
    scheme: str | None = None
    #: The ``WWW-Authenticate`` value to answer with, set by ``verify``/``averify``.
    www_authenticate: str | None = None

    def with_scheme(self, scheme: str) -> AuthenticationError:
        """Attach the error to one challenge scheme (e.g. a Bearer token where DPoP is required)."""
        self.scheme = scheme
        return self


class InvalidRequest(AuthenticationError):
    error = "invalid_request"
    status_code = 400
    default_description = "Malformed authorization request."


class InvalidToken(AuthenticationError):
    error = "invalid_token"
    status_code = 401
    default_description = "Invalid access token."


class InvalidActClaim(InvalidToken):
    default_description = "Invalid act claim."


class InvalidDPoPProof(AuthenticationError):
    error = "invalid_dpop_proof"
    status_code = 401
    scheme = "DPoP"
    default_description = "Invalid DPoP proof."


class UseDPoPNonce(AuthenticationError):
    error = "use_dpop_nonce"
    status_code = 401
    scheme = "DPoP"
    default_description = "Resource server requires nonce in DPoP proof."


class UnverifiedBoundToken(Auth0OboError, ValueError):
    """Refusal to exchange a sender-constrained token whose binding nobody verified here.

    The tenant does not re-check ``cnf.jkt`` during an exchange, so only a ``VerifiedToken``
    whose DPoP proof matched its binding may be exchanged. A programming error, not the
    caller's: a ValueError, answered 500 if it escapes a view.
    """

    error = "unverified_bound_token"
    default_description = "Refusing to exchange a DPoP-bound token whose proof was not verified."


class TenantUnavailable(Auth0OboError):
    """The tenant's discovery document or keys could not be obtained and none are cached."""

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "The authorization server cannot be reached."


class TokenExchangeError(Auth0OboError):
    """The token endpoint refused or failed an exchange.

    ``error`` and ``error_description`` are the tenant's own words (RFC 6749 §5.2), kept verbatim;
    ``status_code`` is the tenant's HTTP status (or 502/503/504 for transport failures). The
    exchange adds what it knows of the attempt (``grant``, ``connection`` for Token Vault, the
    subject token's ``delegation_depth``), so :func:`.exchange_errors.describe` can tell the
    API's caller what the tenant meant.
    """

    def __init__(
        self,
        error: str,
        error_description: str | None = None,
        status_code: int = 502,
        *,
        retry_after: float | None = None,
        **extra: Any,
    ) -> None:
        self.error = error
        self.error_description = error_description or ""
        self.status_code = status_code
        self.retry_after = retry_after
        self.extra = extra
        self.grant: str | None = None
        self.connection: str | None = None
        self.delegation_depth: int | None = None
        description = f"{error}: {self.error_description}" if self.error_description else error
        super().__init__(description)

    def add_context(
        self, *, grant: str, connection: str | None, delegation_depth: int | None
    ) -> None:
        """Record which exchange failed: the grant, the Token Vault connection, and how many
        ``act`` levels the subject token already had (None when unknown)."""
        self.grant = grant
        self.connection = connection
        self.delegation_depth = delegation_depth

    def __repr__(self) -> str:
        return (
            f"TokenExchangeError(error={self.error!r}, "
            f"error_description={self.error_description!r}, status_code={self.status_code})"
        )

"""``Auth0Authentication``: DRF authentication for Auth0 access tokens, Bearer or DPoP.

A pipeline of small overridable steps — header → credentials → verified token → user — in the
manner of DRF's ``TokenAuthentication``. It returns None for requests that are not ours (no
``Authorization`` header, another scheme) so other authenticators can run, and raises for
Bearer/DPoP credentials that fail. The failure is remembered on the request so
``authenticate_header`` can answer with the precise RFC 6750 / RFC 9449 challenge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.views.decorators.debug import sensitive_variables
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from django_auth0_obo import (
    absolute_url,
    challenges,
    domains,
    forwarded_ip,
    instrument,
    observability,
    signals,
    verification,
)
from django_auth0_obo.api_exceptions import Auth0AuthenticationFailed, ServiceUnavailable
from django_auth0_obo.conf import as_tuple, obo_settings, view_option
from django_auth0_obo.exceptions import (
    AuthenticationError,
    InvalidToken,
    TenantUnavailable,
)
from django_auth0_obo.user import Auth0User
from django_auth0_obo.verified import VerifiedToken

logger = logging.getLogger("django_auth0_obo")

#: RFC 6750 §2.1 b64token (kept here for importers; the rule lives in ``verification``).
TOKEN_PATTERN = verification.TOKEN_PATTERN

#: Attribute on the Django ``HttpRequest`` holding the failure, for ``authenticate_header``.
ERROR_ATTRIBUTE = "auth0_obo_error"


class Auth0Authentication(BaseAuthentication):
    """Verify ``Authorization: Bearer <token>`` or ``Authorization: DPoP <token>`` + ``DPoP``.

    Headers are read from the Django request behind DRF's ``Request`` (``request._request``):
    this runs on every request, and DRF's attribute proxy costs a failed lookup each time.
    """

    keywords = ("bearer", "dpop")

    # Django's error reports hide the locals of every frame below a ``sensitive_variables``
    # wrapper, so this one covers the steps it calls; the verifier's own entry points carry theirs.
    @sensitive_variables()
    def authenticate(self, request: Request) -> tuple[Any, VerifiedToken] | None:
        forwarded_ip.remember_request(request._request)
        domains.remember_request(request._request)
        try:
            credentials = self.get_credentials(request)
            if credentials is None:
                return None
            scheme, raw_token = credentials
            verified = self.verify_credentials(request, scheme, raw_token)
            user = self.get_user(verified)
        except AuthenticationError as error:
            setattr(request._request, ERROR_ATTRIBUTE, error)
            observability.token_rejected(type(self), request, error)
            raise Auth0AuthenticationFailed(error) from error
        except TenantUnavailable as error:
            logger.warning("Cannot verify tokens: %s", error.description)
            raise ServiceUnavailable() from error
        instrument.request_authenticated(request, verified)
        if signals.token_verified.receivers:  # none by default: skip building the call
            signals.token_verified.send(sender=type(self), request=request, token=verified)
        return user, verified

    def get_credentials(self, request: Request) -> tuple[str, str] | None:
        """Return ``(scheme, raw token)`` from the Authorization header, or None if not ours."""
        return verification.parse_authorization(
            request._request.META.get("HTTP_AUTHORIZATION"), self.keywords
        )

    def verify_credentials(self, request: Request, scheme: str, raw_token: str) -> VerifiedToken:
        """Return the verified token; for DPoP the proof is checked against ``cnf.jkt``."""
        return verification.verify_credentials_unwrapped(
            scheme,
            raw_token,
            proof=self.get_dpop_proof(request),
            method=request._request.method or "GET",
            url=lambda: absolute_url.request_url(request._request),
            audiences=self.get_audiences(request),
        )

    def get_dpop_proof(self, request: Request) -> str | None:
        """Return the single ``DPoP`` header value, or None when absent."""
        return verification.parse_dpop_header(request._request.META.get("HTTP_DPOP"))

    def get_audiences(self, request: Request) -> Sequence[str] | None:
        """Return the view's ``audience`` narrowing (str or list), or None for the settings'."""
        view = (request.parser_context or {}).get("view")
        audience = view_option(view, "audience")
        return None if audience is None else as_tuple(audience)

    def get_user(self, verified: VerifiedToken) -> Any:
        """Return ``USER_RESOLVER(claims)`` when configured, else a stateless ``Auth0User``."""
        resolver = obo_settings.USER_RESOLVER
        if resolver is None:
            return Auth0User(verified)
        user = resolver(verified.claims)
        if user is None:
            raise InvalidToken("The token's subject is not a known user.")
        return user

    def authenticate_header(self, request: Request) -> str:
        """The 401 challenge: the failure's RFC error code if any, and ``scope=`` (the view's
        required scopes, else SCOPES_SUPPORTED)."""
        error: AuthenticationError | None = getattr(request._request, ERROR_ATTRIBUTE, None)
        view = (getattr(request, "parser_context", None) or {}).get("view")
        scope = challenges.challenge_scope(view_option(view, "required_scopes"))
        return challenges.for_request(request, **challenges.challenge_values(error, scope=scope))

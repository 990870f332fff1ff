"""django-ninja: ``Auth0Auth``, the same checks, challenges and audit as ``Auth0Authentication``.

::

    from ninja import NinjaAPI
    from django_auth0_obo.contrib.ninja import Auth0Auth, add_challenges

    api = NinjaAPI(auth=Auth0Auth())
    add_challenges(api)  # WWW-Authenticate on 401/403, which ninja leaves out by default

    @api.get("/events", auth=Auth0Auth(required_scopes=["calendar:read"]))
    def events(request):
        return {"user": request.auth.sub}  # request.auth is the VerifiedToken

Rather than a second copy of the verification and permission rules, each call runs the DRF
pipeline itself on a DRF ``Request`` wrapped around ninja's: ``Auth0Authentication`` verifies
(Bearer or DPoP, the view's audience), ``AllowedActors`` and ``HasScopes`` decide, and the audit
trail records the request exactly as for a DRF view. Refusals become :class:`Auth0NinjaError`,
whose handler (installed by :func:`add_challenges`) adds the challenge header; without it ninja's
own ``HttpError`` handler still answers with the right status and ``detail``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.security.base import AuthBase
from rest_framework import exceptions
from rest_framework.request import Request

from django_auth0_obo.api_exceptions import InsufficientScope
from django_auth0_obo.authentication import Auth0Authentication
from django_auth0_obo.permissions import AllowedActors, HasScopes
from django_auth0_obo.verified import VerifiedToken

__all__ = ["Auth0Auth", "Auth0NinjaError", "add_challenges"]


class Auth0NinjaError(HttpError):
    """A refusal with its status, JSON body and, when there is one, its challenge header."""

    def __init__(
        self,
        status_code: int,
        detail: Any,
        www_authenticate: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        message = detail.get("detail", "") if isinstance(detail, dict) else str(detail)
        super().__init__(status_code, str(message))
        self.detail = detail
        self.headers = dict(headers or {})
        if www_authenticate:
            self.headers["WWW-Authenticate"] = www_authenticate


def add_challenges(api: NinjaAPI) -> NinjaAPI:
    """Answer :class:`Auth0NinjaError` with its body and headers (``WWW-Authenticate``...)."""

    def handler(request: HttpRequest, exc: Any) -> HttpResponse:
        assert isinstance(exc, Auth0NinjaError)
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        response = api.create_response(request, body, status=exc.status_code)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    api.add_exception_handler(Auth0NinjaError, handler)
    return api


class _Route:
    """What the DRF permissions and the audit read from a view, for one ninja auth object."""

    def __init__(self, auth: Auth0Auth) -> None:
        self.audience = auth.audience
        self.required_scopes = auth.required_scopes
        self.allowed_actors = auth.allowed_actors
        self.allow_direct_tokens = auth.allow_direct_tokens
        self.permissions = auth.get_permissions()

    def check_permissions(self, request: Request) -> None:
        """As ``APIView.check_permissions``: the first refusal goes to :meth:`permission_denied`.
        The app instruments both methods as on a DRF view, so refusals and audit are the same."""
        for permission in self.permissions:
            if not permission.has_permission(request, self):
                self.permission_denied(
                    request,
                    message=getattr(permission, "message", None),
                    code=getattr(permission, "code", None),
                )

    def permission_denied(self, request: Request, message: Any = None, code: Any = None) -> None:
        """As ``APIView.permission_denied`` (the instrumentation raises our refusal instead)."""
        raise exceptions.PermissionDenied(detail=message, code=code)


class Auth0Auth(AuthBase):
    """ninja auth for Auth0 access tokens (Bearer or DPoP); ``request.auth`` is the token.

    ``audience`` replaces ``AUDIENCE`` for the routes using this object, like a DRF view's
    ``audience``. ``required_scopes`` adds ``HasScopes``; ``allowed_actors`` (or
    ``check_actors=True`` to use the ``ALLOWED_ACTORS`` setting) adds ``AllowedActors``, with
    ``allow_direct_tokens`` as on a DRF view.
    """

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_bearerFormat = "JWT"

    def __init__(
        self,
        *,
        audience: str | Iterable[str] | None = None,
        required_scopes: Iterable[str] | str = (),
        allowed_actors: Iterable[str] | None = None,
        check_actors: bool = False,
        allow_direct_tokens: bool = False,
    ) -> None:
        super().__init__()
        self.audience = audience if audience is None or isinstance(audience, str) else [*audience]
        scopes = required_scopes.split() if isinstance(required_scopes, str) else required_scopes
        self.required_scopes = tuple(scopes)
        self.allowed_actors = None if allowed_actors is None else list(allowed_actors)
        self.check_actors = check_actors or allowed_actors is not None
        self.allow_direct_tokens = allow_direct_tokens

    def get_authenticator(self) -> Auth0Authentication:
        return Auth0Authentication()

    def get_permissions(self) -> list[Any]:
        permissions: list[Any] = []
        if self.check_actors:
            permissions.append(AllowedActors())
        if self.required_scopes:
            permissions.append(HasScopes())
        return permissions

    def __call__(self, request: HttpRequest) -> VerifiedToken:
        authenticator = self.get_authenticator()
        route = _Route(self)
        drf_request = Request(request, authenticators=[authenticator])
        drf_request.parser_context = {"view": route, "request": drf_request}
        try:
            result = authenticator.authenticate(drf_request)
        except exceptions.APIException as error:
            header = None
            if isinstance(error, exceptions.AuthenticationFailed):
                header = authenticator.authenticate_header(drf_request)
            raise Auth0NinjaError(
                error.status_code, {"detail": str(error.detail)}, header
            ) from error
        if result is None:  # no credentials, or another scheme: the bare challenge
            raise Auth0NinjaError(
                401,
                {"detail": "Authentication credentials were not provided."},
                authenticator.authenticate_header(drf_request),
            )
        user, token = result
        drf_request.user, drf_request.auth = user, token
        request.user = user  # as DRF does for Django code reading request.user
        try:
            route.check_permissions(drf_request)
        except exceptions.APIException as error:
            header = error.auth_header if isinstance(error, InsufficientScope) else None
            detail = error.detail if isinstance(error.detail, dict) else {"detail": error.detail}
            raise Auth0NinjaError(error.status_code, detail, header) from error
        return token

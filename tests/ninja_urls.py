"""A django-ninja API protected by ``Auth0Auth`` (for ``tests/project/test_ninja.py``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import include, path
from ninja import NinjaAPI

from django_auth0_obo.contrib.ninja import Auth0Auth, add_challenges

CALENDAR_API = "https://calendar-api.example.com"

api = add_challenges(NinjaAPI(auth=Auth0Auth(), urls_namespace="auth0_obo_ninja_test"))
bare = NinjaAPI(auth=Auth0Auth(), urls_namespace="auth0_obo_ninja_bare")


def _claims(request: HttpRequest) -> dict[str, Any]:
    token = request.auth  # type: ignore[attr-defined]
    return {
        "sub": token.sub,
        "scheme": token.scheme,
        "actor": token.current_actor,
        "user": request.user.username,
    }


@api.get("/whoami")
def whoami(request: HttpRequest) -> dict[str, Any]:
    return _claims(request)


@api.get(
    "/calendar",
    auth=Auth0Auth(
        audience=CALENDAR_API,
        required_scopes=["calendar:read"],
        allowed_actors=["mcp-server-client"],
    ),
)
def calendar(request: HttpRequest) -> dict[str, Any]:
    return _claims(request)


@bare.get("/whoami")
def bare_whoami(request: HttpRequest) -> dict[str, Any]:
    return _claims(request)


urlpatterns = [
    path("", include("django_auth0_obo.urls")),
    path("ninja/", api.urls),
    path("bare/", bare.urls),
]

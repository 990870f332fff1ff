"""One DRF boundary: every refusal leaves a view as an ``api_exceptions`` class, and every
challenge is built by ``challenges.for_request`` from the settings read in one place.

Each row is a request through a real DRF view with its exact status, body code and full
``WWW-Authenticate`` header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo import api_exceptions, challenges, permissions
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.verified import VerifiedToken

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

API = "https://api.example.com"
ACTOR = "mcp-server-client"
METADATA = "http://testserver/.well-known/oauth-protected-resource"


class ScopedView(APIView):
    permission_classes = [permissions.AllowedActors, permissions.HasScopes]
    allowed_actors = [ACTOR]
    required_scopes = ["read:data"]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("", include("django_auth0_obo.urls")),
    path("scoped", ScopedView.as_view()),
]

Build = Callable[[LocalTenant, DPoPKey], dict[str, str]]


def bearer(**claims: Any) -> Build:
    def build(tenant: LocalTenant, key: DPoPKey) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {tenant.mint(**claims)}"}

    return build


def dpop(**claims: Any) -> Build:
    def build(tenant: LocalTenant, key: DPoPKey) -> dict[str, str]:
        token = tenant.mint(cnf_jkt=key.jkt, **claims)
        proof = key.proof("GET", "http://testserver/scoped", token)
        return {"HTTP_AUTHORIZATION": f"DPoP {token}", "HTTP_DPOP": proof}

    return build


def nothing(tenant: LocalTenant, key: DPoPKey) -> dict[str, str]:
    return {}


DELEGATED = {"act": {"sub": ACTOR}, "azp": ACTOR}


@dataclass(frozen=True)
class Case:
    build: Build
    status: int
    code: str | None
    header: str | None
    settings: dict[str, Any] = field(default_factory=dict)


CASES = {
    "missing scope over Bearer: Bearer challenge only, with the needed scope": Case(
        bearer(scope="other", **DELEGATED),
        403,
        "insufficient_scope",
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="Missing scope(s): read:data.", scope="read:data", '
        f'resource_metadata="{METADATA}"',
    ),
    "missing scope over DPoP: DPoP challenge only": Case(
        dpop(scope="other", **DELEGATED),
        403,
        "insufficient_scope",
        'DPoP algs="ES256", error="insufficient_scope", '
        'error_description="Missing scope(s): read:data.", scope="read:data", '
        f'resource_metadata="{METADATA}"',
    ),
    "the REALM setting reaches the insufficient_scope challenge": Case(
        bearer(scope="other", **DELEGATED),
        403,
        "insufficient_scope",
        'Bearer realm="calendar", error="insufficient_scope", '
        'error_description="Missing scope(s): read:data.", scope="read:data", '
        f'resource_metadata="{METADATA}"',
        {"REALM": "calendar"},
    ),
    "an actor refusal is a 403 with a code and no challenge": Case(
        bearer(scope="read:data", act={"sub": "rogue"}, azp="rogue"),
        403,
        "actor_not_allowed",
        None,
    ),
    "DPOP_ALGORITHMS given as one string is one algorithm, not its letters": Case(
        nothing,
        401,
        None,
        f'Bearer realm="api", scope="read:data", resource_metadata="{METADATA}", '
        f'DPoP algs="ES256", scope="read:data", resource_metadata="{METADATA}"',
        {"DPOP_ALGORITHMS": "ES256"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_refusals_and_challenges_at_the_boundary(
    case: Case, auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, **case.settings}
    response = api_client.get("/scoped", **case.build(auth0_tenant, dpop_key))
    assert response.status_code == case.status, response.content
    if case.code is not None:
        assert response.json()["code"] == case.code
    assert response.headers.get("WWW-Authenticate") == case.header


REFUSALS = {
    "insufficient scope": (permissions.INSUFFICIENT_SCOPE, api_exceptions.InsufficientScope),
    "actor not allowed": (permissions.ACTOR_NOT_ALLOWED, api_exceptions.Auth0PermissionDenied),
    "direct token": (
        permissions.DIRECT_TOKEN_NOT_ALLOWED,
        api_exceptions.Auth0PermissionDenied,
    ),
}


@pytest.mark.parametrize(("code", "kind"), REFUSALS.values(), ids=REFUSALS.keys())
def test_every_refusal_becomes_an_api_exceptions_class(
    code: str, kind: type, settings: Any
) -> None:
    settings.AUTH0_OBO = {"DOMAIN": "tenant.example.com", "AUDIENCE": API}
    request = Request(RequestFactory().get("/scoped"))
    request._authenticator = None
    request.user, request.auth = None, VerifiedToken("t", {"sub": "u", "aud": API})
    exc = permissions.refusal_exception(request, permissions.Refusal(code, "No.", scopes=("a",)))
    assert type(exc) is kind
    assert exc.detail == {"detail": "No.", "code": code}
    assert not hasattr(permissions, "InsufficientScopeError")


def test_for_request_reads_the_settings_and_the_metadata_url(settings: Any) -> None:
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": API,
        "REALM": "r",
        "DPOP_MODE": "required",
        "DPOP_ALGORITHMS": ["ES256", "EdDSA"],
    }
    request = RequestFactory().get("/scoped")
    assert challenges.for_request(request, error="invalid_token", error_description="x") == (
        f'DPoP algs="ES256 EdDSA", error="invalid_token", error_description="x", '
        f'resource_metadata="{METADATA}"'
    )

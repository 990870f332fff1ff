"""Where a 401 sends an MCP client: ``resource_metadata=`` points at the document whose
``resource`` is exactly RESOURCE (the path form for a resource with a path, RFC 9728 §3.3), and
``scope=`` names the view's required scopes, else SCOPES_SUPPORTED (MCP authorization)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo.permissions import HasScopes

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

WELL_KNOWN = "http://testserver/.well-known/oauth-protected-resource"


class OpenView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ScopedView(OpenView):
    permission_classes = [HasScopes]
    required_scopes = ["calendar:read", "calendar:write"]


class HookView(OpenView):
    permission_classes = [HasScopes]

    def get_required_scopes(self) -> str:
        return "files:read"


urlpatterns = [
    path("", include("django_auth0_obo.urls")),
    path("open", OpenView.as_view()),
    path("scoped", ScopedView.as_view()),
    path("hook", HookView.as_view()),
]


def obo(settings: Any, **values: Any) -> None:
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": ["https://mcp.example.com", "https://api.example.com/v1/mcp"],
        **values,
    }


def challenge_param(response: Any, name: str) -> list[str]:
    return re.findall(rf'{name}="([^"]*)"', response["WWW-Authenticate"])


@dataclass(frozen=True)
class Target:
    settings: dict[str, Any]
    metadata_url: str
    resource: str


TARGETS = {
    "no RESOURCE: the first audience, no path, root form": Target(
        {}, WELL_KNOWN, "https://mcp.example.com"
    ),
    "RESOURCE with a path: the path form (root form before the fix)": Target(
        {"RESOURCE": "https://mcp.example.com/mcp"},
        f"{WELL_KNOWN}/mcp",
        "https://mcp.example.com/mcp",
    ),
    "a deeper path with a trailing slash is served exactly": Target(
        {"RESOURCE": "https://api.example.com/v1/mcp/"},
        f"{WELL_KNOWN}/v1/mcp",
        "https://api.example.com/v1/mcp/",
    ),
    "the first audience has a path and no RESOURCE is set": Target(
        {"AUDIENCE": ["https://api.example.com/v1/mcp", "https://mcp.example.com"]},
        f"{WELL_KNOWN}/v1/mcp",
        "https://api.example.com/v1/mcp",
    ),
    "a RESOURCE path shared with an audience: RESOURCE wins": Target(
        {"RESOURCE": "https://mcp.example.com/v1/mcp"},
        f"{WELL_KNOWN}/v1/mcp",
        "https://mcp.example.com/v1/mcp",
    ),
}


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
def test_the_challenge_points_at_the_document_for_exactly_this_resource(
    target: Target, client: Any, settings: Any
) -> None:
    obo(settings, **target.settings)
    response = client.get("/open")
    assert response.status_code == 401
    urls = challenge_param(response, "resource_metadata")
    assert urls == [target.metadata_url, target.metadata_url]  # Bearer and DPoP challenges
    document = client.get(urlsplit(target.metadata_url).path)
    assert document.status_code == 200
    assert document.json()["resource"] == target.resource


@dataclass(frozen=True)
class Scoped:
    url: str
    scope: str | None
    settings: dict[str, Any] = field(default_factory=dict)


SCOPES = {
    "the view's required scopes": Scoped(
        "/scoped", "calendar:read calendar:write", {"SCOPES_SUPPORTED": ["other"]}
    ),
    "the view's get_required_scopes()": Scoped("/hook", "files:read"),
    "no view scopes: SCOPES_SUPPORTED": Scoped(
        "/open", "calendar:read mcp:tools", {"SCOPES_SUPPORTED": ["calendar:read", "mcp:tools"]}
    ),
    "neither: no scope parameter": Scoped("/open", None),
}


@pytest.mark.parametrize("row", SCOPES.values(), ids=SCOPES.keys())
def test_a_401_names_the_scopes_to_ask_for(row: Scoped, client: Any, settings: Any) -> None:
    obo(settings, **row.settings)
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer not.a.token"}):
        response = client.get(row.url, **headers)
        assert response.status_code == 401
        expected = [row.scope, row.scope] if row.scope else []
        assert challenge_param(response, "scope") == expected

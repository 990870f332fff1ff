"""Permissions never fail open: a table of delegated tokens and views, each row with its exact
answer and why, plus the views that are configuration errors.

Rows cover Auth0's default profile (``azp``), the RFC 9068 profile (``client_id``), tokens naming
neither, and Auth0's agents as principals (``act`` with ``sub`` ``agt_…``, ``client_id`` and
``sub_profile``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo import view_checks
from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.permissions import AllowedActors, HasScopes
from django_auth0_obo.testing import REMOVE

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

MCP = "mcp-server-client"
AGENT = "agt_7f3a"
AGENT_CLIENT = "agent-runner-client"


class ActorsView(APIView):
    permission_classes = [AllowedActors]
    allowed_actors = [MCP]

    def get(self, request: Request) -> Response:
        token = request.auth
        return Response({"client": token.actor_client_id, "profile": token.actor_profile})


class AgentByIdView(ActorsView):
    allowed_actors = [AGENT]


class AgentByClientView(ActorsView):
    allowed_actors = [AGENT_CLIENT]


class NoScopesView(APIView):
    """A typo: ``required_scope`` instead of ``required_scopes``."""

    permission_classes = [HasScopes]
    required_scope = ["read:data"]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class EmptyScopesView(NoScopesView):
    required_scopes: list[str] = []


class EmptyHookView(NoScopesView):
    def get_required_scopes(self) -> list[str]:
        return []


class ComposedNoScopesView(NoScopesView):
    permission_classes = [IsAuthenticated & (AllowedActors | ~HasScopes)]


class FineView(NoScopesView):
    required_scopes = ["read:data"]


@api_view(["GET"])
@permission_classes([HasScopes])
def no_scopes_function(request: Request) -> Response:
    return Response({"ok": True})


urlpatterns = [
    path("actors", ActorsView.as_view()),
    path("agent-by-id", AgentByIdView.as_view()),
    path("agent-by-client", AgentByClientView.as_view()),
    path("no-scopes", NoScopesView.as_view()),
    path("empty-scopes", EmptyScopesView.as_view()),
    path("empty-hook", EmptyHookView.as_view()),
    path("nested/", include([path("composed", ComposedNoScopesView.as_view())])),
    path("fine", FineView.as_view()),
    path("function", no_scopes_function),
]


@dataclass(frozen=True)
class Case:
    why: str
    claims: dict[str, Any]
    status: int
    code: str | None = None
    path: str = "/actors"
    settings: dict[str, Any] = field(default_factory=dict)


def agent(**extra: Any) -> dict[str, Any]:
    return {"sub": AGENT, "client_id": AGENT_CLIENT, "sub_profile": "ai_agent", **extra}


CASES = [
    # Auth0's profile: azp.
    Case("azp names the actor", {"act": {"sub": MCP}, "azp": MCP}, 200),
    Case(
        "azp names another client", {"act": {"sub": MCP}, "azp": "app"}, 403, "actor_azp_mismatch"
    ),
    Case(
        "azp is null: present, names nobody",
        {"act": {"sub": MCP}, "azp": None},
        403,
        "actor_azp_mismatch",
    ),
    Case(
        "azp wins over client_id when both are present",
        {"act": {"sub": MCP}, "azp": MCP, "client_id": "app"},
        200,
    ),
    # RFC 9068 profile: client_id (passed before the fix).
    Case(
        "RFC 9068 client_id names the actor",
        {"act": {"sub": MCP}, "azp": REMOVE, "client_id": MCP},
        200,
    ),
    Case(
        "RFC 9068 client_id names another client",
        {"act": {"sub": MCP}, "azp": REMOVE, "client_id": "app"},
        403,
        "actor_azp_mismatch",
    ),
    Case(
        "a token naming neither is compared on neither", {"act": {"sub": MCP}, "azp": REMOVE}, 200
    ),
    Case(
        "the setting turns the comparison off",
        {"act": {"sub": MCP}, "azp": "app"},
        200,
        settings={"REQUIRE_ACTOR_AZP_MATCH": False},
    ),
    # Agents as principals (refused as actor_azp_mismatch before the fix).
    Case(
        "agent listed by id, azp its client",
        {"act": agent(), "azp": AGENT_CLIENT},
        200,
        path="/agent-by-id",
    ),
    Case(
        "agent listed by its client, azp its client",
        {"act": agent(), "azp": AGENT_CLIENT},
        200,
        path="/agent-by-client",
    ),
    Case(
        "agent, RFC 9068 client_id its client",
        {"act": agent(), "azp": REMOVE, "client_id": AGENT_CLIENT},
        200,
        path="/agent-by-id",
    ),
    Case(
        "agent listed by neither", {"act": agent(), "azp": AGENT_CLIENT}, 403, "actor_not_allowed"
    ),
    Case(
        "agent whose client is not the token's client",
        {"act": agent(), "azp": "app"},
        403,
        "actor_azp_mismatch",
        path="/agent-by-id",
    ),
    Case(
        "azp equal to the agent id is not its client",
        {"act": agent(), "azp": AGENT},
        403,
        "actor_azp_mismatch",
        path="/agent-by-id",
    ),
    Case(
        "malformed act.client_id never matches",
        {"act": agent(client_id=42), "azp": AGENT_CLIENT},
        403,
        "actor_azp_mismatch",
        path="/agent-by-id",
    ),
    Case(
        "an allow-list naming the client does not admit another agent of another client",
        {"act": agent(client_id="other-client"), "azp": "other-client"},
        403,
        "actor_not_allowed",
        path="/agent-by-client",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.why for c in CASES])
def test_actor_and_client_table(
    case: Case, auth0_tenant: Any, api_client: Any, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, **case.settings}
    claims = dict(case.claims)
    act = claims.pop("act")
    token = auth0_tenant.mint(act=act, claims=claims)
    response = api_client.get(case.path, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == case.status, response.content
    if case.code is not None:
        assert response.json()["code"] == case.code
    event = DelegationEvent.objects.get()
    assert event.outcome == ("allowed" if case.status == 200 else "denied")
    if isinstance(act.get("client_id"), str):
        assert (event.actor_client_id, event.actor_profile) == (act["client_id"], "ai_agent")
    else:
        assert (event.actor_client_id, event.actor_profile) == ("", act.get("sub_profile", ""))


def test_the_verified_token_exposes_the_agents_client_and_profile(auth0_tenant, api_client) -> None:
    token = auth0_tenant.mint(act=agent(), azp=AGENT_CLIENT)
    response = api_client.get("/agent-by-id", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.json() == {"client": AGENT_CLIENT, "profile": "ai_agent"}


MISCONFIGURED = {
    "misspelt attribute": ("/no-scopes", "NoScopesView"),
    "empty list": ("/empty-scopes", "EmptyScopesView"),
    "hook returning nothing": ("/empty-hook", "EmptyHookView"),
    "function view": ("/function", "no_scopes_function"),
}


@pytest.mark.parametrize(("url", "name"), MISCONFIGURED.values(), ids=MISCONFIGURED.keys())
def test_has_scopes_without_required_scopes_never_grants(
    url: str, name: str, auth0_tenant: Any, api_client: Any
) -> None:
    token = auth0_tenant.mint(scope="read:data")
    with pytest.raises(ImproperlyConfigured, match=name):
        api_client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_the_system_check_names_every_view_without_required_scopes(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    errors = view_checks.check_required_scopes()
    assert {e.id for e in errors} == {"auth0_obo.E020"}
    assert {e.obj.__name__ for e in errors} == {
        "NoScopesView",
        "EmptyScopesView",
        "ComposedNoScopesView",
        "no_scopes_function",
    }
    assert all(f"{e.obj.__name__} uses HasScopes" in e.msg for e in errors)


def test_the_example_project_passes_the_check(settings: Any) -> None:
    settings.ROOT_URLCONF = "testproject.urls"
    assert view_checks.check_required_scopes() == []

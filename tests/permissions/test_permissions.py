"""AllowedActors and HasScopes through real DRF views, with tokens from the local tenant.

The URL patterns below are this module's own (``pytest.mark.urls``): class-based and function
views, composed permissions, and a view behind another authenticator.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import include, path
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.permissions import AllowedActors, HasScopes

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

API = "https://api.example.com"
MCP = "mcp-server-client"


class ActorsView(APIView):
    permission_classes = [AllowedActors]
    allowed_actors = [MCP]

    def get(self, request: Request) -> Response:
        return Response({"actor": request.auth.current_actor})


class DynamicActorsView(ActorsView):
    def get_allowed_actors(self) -> list[str]:
        return [self.request.query_params.get("who", "")]


class DirectAllowedView(ActorsView):
    allow_direct_tokens = True


class SettingsActorsView(APIView):
    permission_classes = [AllowedActors]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ScopesView(APIView):
    permission_classes = [HasScopes]
    required_scopes = ["calendar:read", "calendar:write"]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class BothView(APIView):
    permission_classes = [AllowedActors, HasScopes]
    allowed_actors = [MCP]
    required_scopes = ["read:data"]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class OrView(APIView):
    permission_classes = [AllowedActors | IsAdminUser]
    allowed_actors = [MCP]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class NotView(APIView):
    permission_classes = [~AllowedActors]
    allowed_actors = [MCP]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ScopesOrActorsView(APIView):
    permission_classes = [HasScopes | AllowedActors]
    required_scopes = ["admin:all"]
    allowed_actors = [MCP]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class FixedUserAuthentication(BaseAuthentication):
    """Another authenticator: request.auth is not a VerifiedToken."""

    def authenticate(self, request: Request) -> Any:
        from django.contrib.auth.models import User

        return (User(username="session-user"), "opaque")


class OtherAuthView(APIView):
    authentication_classes = [FixedUserAuthentication]
    permission_classes = [AllowedActors]
    allowed_actors = [MCP]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class OtherAuthScopesView(OtherAuthView):
    permission_classes = [HasScopes]
    required_scopes = ["read:data"]


@api_view(["GET"])
@permission_classes([AllowedActors & HasScopes])
def function_view(request: Request) -> Response:
    return Response({"actor": request.auth.current_actor})


function_view.cls.allowed_actors = [MCP]
function_view.cls.required_scopes = ["read:data"]


urlpatterns = [
    path("", include("django_auth0_obo.urls")),
    path("actors", ActorsView.as_view()),
    path("dynamic", DynamicActorsView.as_view()),
    path("direct", DirectAllowedView.as_view()),
    path("settings-actors", SettingsActorsView.as_view()),
    path("scopes", ScopesView.as_view()),
    path("both", BothView.as_view()),
    path("or", OrView.as_view()),
    path("not", NotView.as_view()),
    path("scopes-or-actors", ScopesOrActorsView.as_view()),
    path("other-auth", OtherAuthView.as_view()),
    path("other-auth-scopes", OtherAuthScopesView.as_view()),
    path("function", function_view),
]


def delegated(tenant: Any, actor: str = MCP, **kwargs: Any) -> str:
    """A token as the tenant issues after an exchange by ``actor`` (azp is the actor)."""
    kwargs.setdefault("azp", actor)
    return tenant.mint(act={"sub": actor}, **kwargs)


def get(client: Any, url: str, token: str) -> Any:
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_an_allowed_current_actor_passes(auth0_tenant, api_client):
    response = get(api_client, "/actors", delegated(auth0_tenant))
    assert response.status_code == 200
    assert response.json() == {"actor": MCP}


def test_an_actor_not_on_the_list_is_refused_with_a_code_naming_it(
    auth0_tenant, api_client, denials
):
    token = delegated(auth0_tenant, "rogue-agent")
    response = get(api_client, "/actors", token)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "actor_not_allowed"
    assert "rogue-agent" in body["detail"]
    assert token not in response.content.decode()
    assert [(d["actor"], d["reason"]) for d in denials] == [("rogue-agent", "actor_not_allowed")]


def test_only_the_outermost_actor_counts_not_a_nested_one(auth0_tenant, api_client):
    token = auth0_tenant.mint(azp="agent", act={"sub": "agent", "act": {"sub": MCP}})
    response = get(api_client, "/actors", token)
    assert response.status_code == 403
    assert response.json()["code"] == "actor_not_allowed"


def test_a_direct_token_is_refused_by_default(auth0_tenant, api_client, denials):
    response = get(api_client, "/actors", auth0_tenant.mint())
    assert response.status_code == 403
    assert response.json()["code"] == "direct_token_not_allowed"
    assert denials[0]["actor"] is None


def test_a_direct_token_passes_where_the_view_allows_direct_tokens(auth0_tenant, api_client):
    assert get(api_client, "/direct", auth0_tenant.mint()).status_code == 200


def test_get_allowed_actors_hook_decides_dynamically(auth0_tenant, api_client):
    token = delegated(auth0_tenant, "agent-7")
    assert get(api_client, "/dynamic?who=agent-7", token).status_code == 200
    assert get(api_client, "/dynamic?who=agent-8", token).status_code == 403


def test_the_allowed_actors_setting_is_the_default_list(auth0_tenant, api_client, settings):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "ALLOWED_ACTORS": ["agent-9"]}
    assert (
        get(api_client, "/settings-actors", delegated(auth0_tenant, "agent-9")).status_code == 200
    )
    assert get(api_client, "/settings-actors", delegated(auth0_tenant)).status_code == 403


def test_no_setting_and_no_view_list_allows_nobody(auth0_tenant, api_client):
    response = get(api_client, "/settings-actors", delegated(auth0_tenant))
    assert response.status_code == 403
    assert response.json()["code"] == "actor_not_allowed"


def test_the_current_actor_must_be_the_authorized_party(auth0_tenant, api_client, denials):
    token = delegated(auth0_tenant, azp="client-app")
    response = get(api_client, "/actors", token)
    assert response.status_code == 403
    assert response.json()["code"] == "actor_azp_mismatch"
    assert denials[0]["reason"] == "actor_azp_mismatch"


def test_the_azp_match_can_be_turned_off(auth0_tenant, api_client, settings):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "REQUIRE_ACTOR_AZP_MATCH": False}
    assert get(api_client, "/actors", delegated(auth0_tenant, azp="client-app")).status_code == 200


def test_a_token_without_azp_needs_no_match(auth0_tenant, api_client):
    token = auth0_tenant.mint(act={"sub": MCP}, omit=["azp"])
    assert get(api_client, "/actors", token).status_code == 200


@pytest.mark.parametrize(("depth", "status"), [(2, 200), (3, 403)])
def test_chains_longer_than_the_maximum_depth_are_refused(
    auth0_tenant, api_client, settings, depth, status
):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "MAX_DELEGATION_DEPTH": 2}
    act: dict[str, Any] = {"sub": "first"}
    for i in range(depth - 1):
        act = {"sub": MCP if i == depth - 2 else f"hop{i}", "act": act}
    response = get(api_client, "/actors", auth0_tenant.mint(azp=MCP, act=act))
    assert response.status_code == status
    if status == 403:
        assert response.json()["code"] == "delegation_too_deep"


def test_a_request_authenticated_otherwise_is_refused_cleanly(api_client, settings):
    response = api_client.get("/other-auth")
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_auth0_token"
    assert get(api_client, "/other-auth-scopes", "x").status_code == 403


def test_all_required_scopes_from_scope_claim_pass(auth0_tenant, api_client):
    token = auth0_tenant.mint(scope="calendar:read calendar:write openid")
    assert get(api_client, "/scopes", token).status_code == 200


def test_scopes_granted_by_rbac_permissions_count(auth0_tenant, api_client):
    token = auth0_tenant.mint(scope="calendar:read", permissions=["calendar:write"])
    assert get(api_client, "/scopes", token).status_code == 200


def test_a_missing_scope_answers_insufficient_scope_with_the_needed_scopes(
    auth0_tenant, api_client
):
    response = get(api_client, "/scopes", auth0_tenant.mint(scope="calendar:read"))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    assert 'error="insufficient_scope"' in header
    assert 'scope="calendar:read calendar:write"' in header
    assert 'resource_metadata="http://testserver/.well-known/oauth-protected-resource"' in header


@pytest.mark.urls("tests.permissions.test_permissions_nometadata")
def test_no_resource_metadata_in_the_scope_challenge_when_urls_are_not_installed(
    auth0_tenant, api_client
):
    response = get(api_client, "/scopes", auth0_tenant.mint(scope="calendar:read"))
    assert response.status_code == 403
    assert "resource_metadata" not in response.headers["WWW-Authenticate"]


def test_scope_failure_of_a_dpop_token_challenges_the_dpop_scheme(auth0_tenant, dpop_key):
    from rest_framework.test import APIClient

    token = auth0_tenant.mint(scope="calendar:read", cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", "http://testserver/scopes", access_token=token)
    response = APIClient().get("/scopes", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert response.status_code == 403
    header = response.headers["WWW-Authenticate"]
    assert re.match(r'DPoP algs="[^"]+", error="insufficient_scope"', header)


def test_actors_and_scopes_both_apply_in_order(auth0_tenant, api_client):
    assert get(api_client, "/both", delegated(auth0_tenant, scope="read:data")).status_code == 200
    no_scope = get(api_client, "/both", delegated(auth0_tenant))
    assert no_scope.json()["code"] == "insufficient_scope"
    bad_actor = get(api_client, "/both", delegated(auth0_tenant, "rogue", scope="read:data"))
    assert bad_actor.json()["code"] == "actor_not_allowed"


def test_or_composition_lets_the_other_permission_decide(auth0_tenant, api_client, denials):
    assert get(api_client, "/or", delegated(auth0_tenant)).status_code == 200
    refused = get(api_client, "/or", delegated(auth0_tenant, "rogue"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "actor_not_allowed"
    assert len(denials) == 1


def test_not_composition_inverts_without_raising(auth0_tenant, api_client, denials):
    assert get(api_client, "/not", delegated(auth0_tenant, "rogue")).status_code == 200
    assert denials == []
    assert get(api_client, "/not", delegated(auth0_tenant)).status_code == 403


def test_a_failing_scope_check_does_not_block_an_or_alternative(auth0_tenant, api_client):
    assert get(api_client, "/scopes-or-actors", delegated(auth0_tenant)).status_code == 200
    refused = get(api_client, "/scopes-or-actors", delegated(auth0_tenant, "rogue"))
    assert refused.status_code == 403


def test_function_views_take_both_permissions(auth0_tenant, api_client):
    assert get(api_client, "/function", delegated(auth0_tenant, scope="read:data")).json() == {
        "actor": MCP
    }
    assert get(api_client, "/function", delegated(auth0_tenant)).status_code == 403
    assert (
        get(api_client, "/function", delegated(auth0_tenant, "x", scope="read:data")).json()["code"]
        == "actor_not_allowed"
    )


def test_no_credentials_is_still_a_401_not_a_403(auth0_tenant, api_client):
    response = api_client.get("/actors")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_a_refusal_is_written_to_the_audit_trail_with_its_reason(auth0_tenant, api_client):
    get(api_client, "/actors", delegated(auth0_tenant, "rogue-agent"))
    event = DelegationEvent.objects.get()
    assert (event.outcome, event.reason, event.current_actor) == (
        "denied",
        "actor_not_allowed",
        "rogue-agent",
    )


@pytest.mark.parametrize("audit", ["off", "delegated", "all"])
@pytest.mark.parametrize(
    ("url", "claims", "code"),
    [
        ("/actors", {"act": {"sub": "rogue-agent"}, "azp": "rogue-agent"}, "actor_not_allowed"),
        ("/actors", {}, "direct_token_not_allowed"),
        ("/scopes", {"scope": "calendar:read"}, "insufficient_scope"),
        ("/both", {"act": {"sub": MCP}, "azp": MCP}, "insufficient_scope"),
        ("/or", {"act": {"sub": "rogue-agent"}, "azp": "rogue-agent"}, "actor_not_allowed"),
    ],
)
def test_refusals_answer_the_same_whatever_the_audit_mode(
    auth0_tenant, api_client, settings, denials, audit, url, claims, code
):
    """The view is instrumented at authentication only when there is an audit record to tell;
    with ``AUDIT = "off"`` our refusals still answer with their code and challenge."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": audit}
    response = get(api_client, url, auth0_tenant.mint(**claims))

    assert response.status_code == 403
    assert response.json()["code"] == code
    if code == "insufficient_scope":
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    else:
        assert [d["reason"] for d in denials] == [code]
    assert DelegationEvent.objects.exists() is (audit != "off")

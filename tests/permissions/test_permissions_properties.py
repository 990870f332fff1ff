"""Properties of AllowedActors and HasScopes over generated claims (no network, no database)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from django_auth0_obo.permissions import AllowedActors, HasScopes
from django_auth0_obo.verified import VerifiedToken

ACTORS = st.sampled_from(["mcp", "agent", "rogue", "tool", "x y", "é"])
SCOPES = st.sampled_from(["a:read", "a:write", "b:read", "openid"])


class View(APIView):
    permission_classes = [AllowedActors]
    allowed_actors = ["mcp", "agent"]

    def get(self, request: Any) -> Response:
        return Response({"ok": True})


class ScopeView(APIView):
    permission_classes = [HasScopes]
    required_scopes = ["a:read", "b:read"]

    def get(self, request: Any) -> Response:
        return Response({"ok": True})


def nest(chain: list[str]) -> dict[str, Any] | None:
    """Newest-first actors → nested ``act`` claim."""
    act: dict[str, Any] | None = None
    for actor in reversed(chain):
        act = {"sub": actor, **({"act": act} if act else {})}
    return act


def call(view: type[APIView], claims: dict[str, Any]) -> Any:
    request = APIRequestFactory().get("/")
    force_authenticate(request, user=object(), token=VerifiedToken("t", claims))
    return view.as_view()(request)


@given(chain=st.lists(ACTORS, min_size=1, max_size=7), azp=st.one_of(st.none(), ACTORS))
def test_only_the_outermost_actor_azp_and_depth_decide(chain, azp, settings):
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": "https://a"}
    claims: dict[str, Any] = {"sub": "u", "act": nest(chain)}
    if azp is not None:
        claims["azp"] = azp
    expected = chain[0] in {"mcp", "agent"} and (azp is None or azp == chain[0]) and len(chain) <= 5
    response = call(View, claims)
    assert (response.status_code == 200) is expected
    if not expected:
        assert response.data["code"] in {
            "actor_not_allowed",
            "actor_azp_mismatch",
            "delegation_too_deep",
        }


@given(scope=st.lists(SCOPES, max_size=4), permissions=st.lists(SCOPES, max_size=4))
def test_scopes_pass_exactly_when_scope_and_permissions_cover_the_requirement(
    scope, permissions, settings
):
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": "https://a"}
    claims = {"sub": "u", "scope": " ".join(scope), "permissions": permissions}
    response = call(ScopeView, claims)
    granted = set(scope) | set(permissions)
    assert (response.status_code == 200) is ({"a:read", "b:read"} <= granted)
    if response.status_code == 403:
        assert 'error="insufficient_scope"' in response["WWW-Authenticate"]

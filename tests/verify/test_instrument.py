"""One place instruments a view: ``instrument.instrument`` (instance hooks) or ``Auth0ViewMixin``
(ordinary overrides) — the same audit rows and the same refusals either way, reached by direct
calls; ``token_verified`` is left to the project's own receivers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo import instrument, signals
from django_auth0_obo.instrument import Auth0ViewMixin
from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.permissions import AllowedActors, HasScopes

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

ACTOR = "mcp-server-client"
SEEN: list[Any] = []


class Remember:
    """Keeps the view instance of each request, to look at how it was instrumented."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        SEEN.append(self)
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class PatchedView(Remember, APIView):
    permission_classes = [AllowedActors, HasScopes]
    allowed_actors = [ACTOR]
    required_scopes = ["read:data"]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class MixinView(Remember, Auth0ViewMixin, APIView):
    permission_classes = [AllowedActors, HasScopes]
    allowed_actors = [ACTOR]
    required_scopes = ["read:data"]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [path("patched", PatchedView.as_view()), path("mixin", MixinView.as_view())]


@dataclass(frozen=True)
class Row:
    claims: dict[str, Any]
    status: int
    code: str | None
    outcome: str
    reason: str
    challenge: bool = False


ROWS = {
    "allowed": Row({"scope": "read:data"}, 200, None, "allowed", ""),
    "actor refused": Row(
        {"scope": "read:data", "act": {"sub": "rogue"}, "azp": "rogue"},
        403,
        "actor_not_allowed",
        "denied",
        "actor_not_allowed",
    ),
    "scope refused": Row(
        {"scope": "x"}, 403, "insufficient_scope", "denied", "insufficient_scope", True
    ),
}


@pytest.fixture
def no_project_receivers() -> Any:
    """The app's own path must not depend on ``token_verified``: run with nothing connected."""
    receivers = signals.token_verified.receivers
    signals.token_verified.receivers = []
    signals.token_verified.sender_receivers_cache.clear()
    yield
    signals.token_verified.receivers = receivers
    signals.token_verified.sender_receivers_cache.clear()


@pytest.mark.parametrize("url", ["/patched", "/mixin"])
@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_patched_and_mixin_views_answer_and_audit_alike(
    url: str, row: Row, auth0_tenant: Any, api_client: Any, no_project_receivers: Any
) -> None:
    SEEN.clear()
    claims = {"act": {"sub": ACTOR}, "azp": ACTOR, **row.claims}
    token = auth0_tenant.mint(**claims)
    response = api_client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == row.status, response.content
    if row.code:
        assert response.json()["code"] == row.code
    assert ("insufficient_scope" in response.headers.get("WWW-Authenticate", "")) is row.challenge
    event = DelegationEvent.objects.get()
    assert (event.outcome, event.reason) == (row.outcome, row.reason)
    (view,) = SEEN
    patched = {"check_permissions", "permission_denied"} & set(vars(view))
    if url == "/mixin":
        assert not patched
        assert not hasattr(view, instrument.INSTRUMENTED_ATTRIBUTE)
    else:
        assert patched == {"check_permissions", "permission_denied"}
        assert getattr(view, instrument.INSTRUMENTED_ATTRIBUTE) is True


def test_the_app_connects_nothing_to_token_verified() -> None:
    assert not signals.token_verified.has_listeners()

"""A refusal by another permission class is DRF's answer, even when one of ours said no first.

In ``[AllowedActors | IsAuthenticated, DenyAll]`` our refusal is overridden by the ``|`` and
``DenyAll`` refuses with its own ``message`` and ``code``: the client gets DRF's 403 for
``DenyAll``, no ``actor_denied`` is sent, no ``insufficient_scope`` challenge is added, and the
audit row carries ``DenyAll``'s code. The same holds for object permissions after an ``|``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import include, path
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.permissions import AllowedActors, HasScopes

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

MCP = "mcp-server-client"
MAINTENANCE = {"detail": "Not during maintenance."}
ARCHIVED = {"detail": "This calendar is archived."}


class DenyAll(BasePermission):
    """Another app's permission with its own message and code."""

    message = MAINTENANCE["detail"]
    code = "maintenance"

    def has_permission(self, request: Request, view: Any) -> bool:
        return False


class DenyObjects(BasePermission):
    """Another app's object permission with its own message and code."""

    message = ARCHIVED["detail"]
    code = "archived"

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return False


class ActorsOrThenDenyAll(APIView):
    permission_classes = [AllowedActors | IsAuthenticated, DenyAll]
    allowed_actors = [MCP]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ScopesOrThenDenyAll(ActorsOrThenDenyAll):
    permission_classes = [HasScopes | IsAuthenticated, DenyAll]
    required_scopes = ["admin:all"]


class ActorsOrThenDenyObjects(ActorsOrThenDenyAll):
    permission_classes = [AllowedActors | IsAuthenticated, DenyObjects]

    def get(self, request: Request) -> Response:
        self.check_object_permissions(request, {"calendar": 1})
        return Response({"ok": True})


class ScopesOrThenDenyObjects(ActorsOrThenDenyObjects):
    permission_classes = [HasScopes | IsAuthenticated, DenyObjects]
    required_scopes = ["admin:all"]


class ActorsOrAdmin(ActorsOrThenDenyAll):
    """Both alternatives refuse: the composite passes DRF neither message nor code."""

    permission_classes = [AllowedActors | IsAdminUser]


urlpatterns = [
    path("", include("django_auth0_obo.urls")),
    path("actors-or-then-deny", ActorsOrThenDenyAll.as_view()),
    path("scopes-or-then-deny", ScopesOrThenDenyAll.as_view()),
    path("actors-or-then-deny-objects", ActorsOrThenDenyObjects.as_view()),
    path("scopes-or-then-deny-objects", ScopesOrThenDenyObjects.as_view()),
    path("actors-or-admin", ActorsOrAdmin.as_view()),
]


def rogue(tenant: Any) -> str:
    """A delegated token AllowedActors refuses (and lacking the scope HasScopes wants)."""
    return tenant.mint(act={"sub": "rogue"}, azp="rogue", scope="read:data")


def get(client: Any, url: str, token: str) -> Any:
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize("url", ["/actors-or-then-deny", "/scopes-or-then-deny"])
def test_a_later_permission_refusing_gets_its_own_answer_not_an_overridden_one_of_ours(
    auth0_tenant, api_client, denials, url
):
    response = get(api_client, url, rogue(auth0_tenant))
    assert response.status_code == 403
    assert response.json() == MAINTENANCE
    assert "insufficient_scope" not in response.headers.get("WWW-Authenticate", "")
    assert denials == []
    event = DelegationEvent.objects.get()
    assert (event.outcome, event.reason) == ("denied", "maintenance")


@pytest.mark.parametrize("url", ["/actors-or-then-deny-objects", "/scopes-or-then-deny-objects"])
def test_a_later_object_permission_refusing_gets_its_own_answer_not_an_overridden_one_of_ours(
    auth0_tenant, api_client, denials, url
):
    response = get(api_client, url, rogue(auth0_tenant))
    assert response.status_code == 403
    assert response.json() == ARCHIVED
    assert "insufficient_scope" not in response.headers.get("WWW-Authenticate", "")
    assert denials == []
    assert not DelegationEvent.objects.filter(
        reason__in=["actor_not_allowed", "insufficient_scope"]
    ).exists()


def test_a_composite_refusing_as_a_whole_still_answers_with_our_refusal(
    auth0_tenant, api_client, denials
):
    response = get(api_client, "/actors-or-admin", rogue(auth0_tenant))
    assert response.status_code == 403
    assert response.json()["code"] == "actor_not_allowed"
    assert [d["reason"] for d in denials] == ["actor_not_allowed"]
    assert DelegationEvent.objects.get().reason == "actor_not_allowed"

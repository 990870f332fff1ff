"""The delegation audit trail: one row per audited request, written after the permission decision.

Requests go through real DRF views and the local tenant; the only injected fault is a database
error (``connection.execute_wrapper``), which no server can produce on demand.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.db import OperationalError, connection
from django.urls import include, path
from django.utils import timezone
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo import audit, signals
from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.permissions import AllowedActors, HasScopes

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

MCP = "mcp-server-client"
API = "https://api.example.com"


class OpenView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        request.user  # noqa: B018 - a second access must not add a row
        return Response({"ok": True})


class ActorsView(APIView):
    permission_classes = [AllowedActors, HasScopes]
    allowed_actors = [MCP]
    required_scopes = ["read:data"]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class AdminOnlyView(OpenView):
    permission_classes = [IsAdminUser]


class FailingView(OpenView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("the view broke after the decision")


class RefusesEveryObject(BasePermission):
    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return False


class ObjectCheckView(APIView):
    """Allowed by ``IsAuthenticated`` although ``HasScopes`` refused; then refuses the object."""

    permission_classes = [HasScopes | IsAuthenticated, RefusesEveryObject]
    required_scopes = ["admin:all"]

    def get(self, request: Request) -> Response:
        self.check_object_permissions(request, object())
        return Response({"ok": True})


class LazyView(APIView):
    """Authenticates only when the permission check first touches ``request.user``."""

    permission_classes = [AllowedActors]
    allowed_actors = [MCP]

    def perform_authentication(self, request: Request) -> None:
        pass

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("", include("django_auth0_obo.urls")),
    path("open", OpenView.as_view(), name="open"),
    path("actors", ActorsView.as_view(), name="actors"),
    path("admin-only", AdminOnlyView.as_view(), name="admin-only"),
    path("failing", FailingView.as_view(), name="failing"),
    path("lazy", LazyView.as_view(), name="lazy"),
    path("object-check", ObjectCheckView.as_view(), name="object-check"),
]


def delegated(tenant: Any, actor: str = MCP, **kwargs: Any) -> str:
    kwargs.setdefault("azp", actor)
    kwargs.setdefault("act", {"sub": actor})
    return tenant.mint(**kwargs)


def get(client: Any, url: str, token: str, **extra: Any) -> Any:
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def audit_mode(settings: Any, mode: str) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": mode}


def test_an_allowed_delegated_request_is_recorded_once_with_who_acted_for_whom(
    auth0_tenant, api_client
):
    token = delegated(
        auth0_tenant,
        "agent",
        sub="auth0|alice",
        act={"sub": "agent", "act": {"sub": MCP}},
        scope="read:data",
        org_id="org_42",
        claims={"jti": "jti-1"},
    )
    response = get(api_client, "/open?secret=do-not-store", token)
    assert response.status_code == 200
    event = DelegationEvent.objects.get()
    assert event.kind == "request"
    assert event.outcome == "allowed"
    assert event.reason == ""
    assert event.subject == "auth0|alice"
    assert event.current_actor == "agent"
    assert event.delegation_chain == ["agent", MCP]
    assert event.depth == 2
    assert (event.azp, event.org_id, event.jti, event.jkt) == ("agent", "org_42", "jti-1", "")
    assert event.audience == auth0_tenant.default_audience  # the project's first AUDIENCE
    assert event.scopes == "read:data"
    assert (event.method, event.path, event.view_name) == ("GET", "/open", "open")


def test_no_row_ever_holds_the_token(auth0_tenant, api_client):
    token = delegated(auth0_tenant, scope="read:data")
    get(api_client, "/open", token)
    get(api_client, "/actors", delegated(auth0_tenant, "rogue"))
    rows = list(DelegationEvent.objects.values())
    assert len(rows) == 2
    dumped = json.dumps(rows, default=str)
    assert token not in dumped
    assert token.split(".")[2] not in dumped


def test_a_dpop_request_records_the_key_thumbprint(auth0_tenant, dpop_key):
    from rest_framework.test import APIClient

    token = delegated(auth0_tenant, cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", "http://testserver/open", access_token=token)
    response = APIClient().get("/open", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert response.status_code == 200
    assert DelegationEvent.objects.get().jkt == dpop_key.jkt


def test_a_denial_is_recorded_with_its_reason_and_only_once(auth0_tenant, api_client):
    response = get(api_client, "/actors", delegated(auth0_tenant, "rogue", scope="read:data"))
    assert response.status_code == 403
    event = DelegationEvent.objects.get()
    assert (event.outcome, event.reason, event.current_actor) == (
        "denied",
        "actor_not_allowed",
        "rogue",
    )


def test_a_scope_denial_is_recorded_as_insufficient_scope(auth0_tenant, api_client):
    get(api_client, "/actors", delegated(auth0_tenant))
    assert DelegationEvent.objects.get().reason == "insufficient_scope"


def test_a_denial_by_another_permission_class_is_recorded_with_drf_code(auth0_tenant, api_client):
    assert get(api_client, "/admin-only", delegated(auth0_tenant)).status_code == 403
    event = DelegationEvent.objects.get()
    assert (event.outcome, event.reason) == ("denied", "permission_denied")


def test_a_direct_token_refused_by_another_permission_class_is_recorded_in_full(
    auth0_tenant, api_client
):
    # Its row is built only on the refusal, from the token kept since authentication.
    token = auth0_tenant.mint(sub="auth0|carol", scope="read:data", claims={"jti": "jti-9"})
    assert get(api_client, "/admin-only?q=1", token).status_code == 403
    event = DelegationEvent.objects.get()
    assert (event.outcome, event.reason, event.subject, event.jti) == (
        "denied",
        "permission_denied",
        "auth0|carol",
        "jti-9",
    )
    assert (event.current_actor, event.depth, event.scopes) == ("", 0, "read:data")
    assert (event.method, event.path, event.view_name) == ("GET", "/admin-only", "admin-only")


@pytest.mark.parametrize(("actor", "rows"), [(None, []), (MCP, ["allowed"])])
def test_a_refusal_after_the_permission_decision_adds_no_row(auth0_tenant, api_client, actor, rows):
    # The decision (allowed) is the request's row, written or not: an object refusal later,
    # even one answered with a refusal of ours from the decision, does not make a second one.
    token = delegated(auth0_tenant, actor) if actor else auth0_tenant.mint(scope="read:data")
    assert get(api_client, "/object-check", token).status_code == 403
    assert list(DelegationEvent.objects.values_list("outcome", flat=True)) == rows


def test_direct_tokens_are_not_recorded_in_delegated_mode(auth0_tenant, api_client):
    assert get(api_client, "/open", auth0_tenant.mint()).status_code == 200
    assert not DelegationEvent.objects.exists()


def test_a_denied_direct_token_is_recorded_even_in_delegated_mode(auth0_tenant, api_client):
    get(api_client, "/actors", auth0_tenant.mint(scope="read:data"))
    event = DelegationEvent.objects.get()
    assert (event.reason, event.current_actor, event.delegation_chain) == (
        "direct_token_not_allowed",
        "",
        [],
    )


def test_all_mode_records_direct_tokens_too(auth0_tenant, api_client, settings):
    audit_mode(settings, "all")
    get(api_client, "/open", auth0_tenant.mint(sub="auth0|bob"))
    event = DelegationEvent.objects.get()
    assert (event.subject, event.depth, event.outcome) == ("auth0|bob", 0, "allowed")


def test_off_mode_records_nothing_not_even_denials(auth0_tenant, api_client, settings):
    audit_mode(settings, "off")
    get(api_client, "/open", delegated(auth0_tenant))
    assert get(api_client, "/actors", delegated(auth0_tenant, "rogue")).status_code == 403
    assert not DelegationEvent.objects.exists()


def test_a_view_failing_after_the_decision_still_leaves_one_allowed_row(auth0_tenant):
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    response = get(client, "/failing", delegated(auth0_tenant))
    assert response.status_code == 500
    assert list(DelegationEvent.objects.values_list("outcome", flat=True)) == ["allowed"]


def test_lazily_authenticated_views_are_recorded_when_the_request_finishes(
    auth0_tenant, api_client
):
    assert get(api_client, "/lazy", delegated(auth0_tenant)).status_code == 200
    assert get(api_client, "/lazy", delegated(auth0_tenant, "rogue")).status_code == 403
    # A direct token: AUDIT wants its row only as a refusal, built when ours refuses it.
    assert get(api_client, "/lazy", auth0_tenant.mint()).status_code == 403
    assert list(DelegationEvent.objects.order_by("id").values_list("outcome", "reason")) == [
        ("allowed", ""),
        ("denied", "actor_not_allowed"),
        ("denied", "direct_token_not_allowed"),
    ]


def test_a_database_error_is_logged_and_the_request_goes_on(auth0_tenant, api_client, caplog):
    def refuse_audit_inserts(execute: Any, sql: str, params: Any, many: bool, context: Any):
        if "INSERT" in sql.upper() and "delegationevent" in sql.lower():
            raise OperationalError("disk full")
        return execute(sql, params, many, context)

    token = delegated(auth0_tenant)
    with (
        caplog.at_level(logging.WARNING, logger="django_auth0_obo"),
        connection.execute_wrapper(refuse_audit_inserts),
    ):
        ok = get(api_client, "/open", token)
        denied = get(api_client, "/actors", delegated(auth0_tenant, "rogue"))
    assert ok.status_code == 200
    assert denied.status_code == 403
    assert not DelegationEvent.objects.exists()
    warnings = [r for r in caplog.records if "audit row" in r.getMessage()]
    assert len(warnings) == 2
    assert all(token not in r.getMessage() for r in caplog.records)
    assert audit.flush() == 2  # kept, and written once the database takes them
    assert sorted(DelegationEvent.objects.values_list("outcome", flat=True)) == [
        "allowed",
        "denied",
    ]


def test_under_atomic_requests_a_denial_survives_drf_rollback(
    auth0_tenant, api_client, monkeypatch
):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    assert get(api_client, "/actors", delegated(auth0_tenant, "rogue")).status_code == 403
    assert get(api_client, "/open", delegated(auth0_tenant)).status_code == 200
    # A direct token: its denial row is built only on the refusal, deferred all the same.
    assert get(api_client, "/admin-only", auth0_tenant.mint()).status_code == 403
    assert get(api_client, "/open", auth0_tenant.mint()).status_code == 200
    assert sorted(DelegationEvent.objects.values_list("outcome", "reason")) == [
        ("allowed", ""),
        ("denied", "actor_not_allowed"),
        ("denied", "permission_denied"),
    ]


# Exchanges.


def test_an_exchange_signal_writes_an_exchange_row(settings):
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": "https://mcp.example.com",
        "CLIENT_ID": MCP,
    }
    claims = {"sub": "auth0|alice", "aud": "https://mcp.example.com", "azp": "client-app"}
    signals.token_exchanged.send(
        sender=None,
        grant="on_behalf_of",
        subject="auth0|alice",
        audience="https://calendar-api.example.com",
        connection=None,
        requested_scope="calendar:read",
        granted_scope="calendar:read",
        cache_hit=True,
        token_type="Bearer",
        expires_at=0,
        claims=claims,
        subject_audience="https://mcp.example.com",
    )
    audit.flush()
    event = DelegationEvent.objects.get()
    assert event.kind == "exchange"
    assert (event.subject, event.current_actor, event.delegation_chain) == (
        "auth0|alice",
        MCP,
        [MCP],
    )
    assert (event.audience, event.target_audience) == (
        "https://mcp.example.com",
        "https://calendar-api.example.com",
    )
    assert (event.requested_scope, event.granted_scope, event.cache_hit) == (
        "calendar:read",
        "calendar:read",
        True,
    )
    assert (event.outcome, event.grant) == ("allowed", "on_behalf_of")


def test_a_failed_exchange_is_recorded_with_the_upstream_error(settings):
    settings.AUTH0_OBO = {"DOMAIN": "tenant.example.com", "AUDIENCE": API, "CLIENT_ID": MCP}
    signals.exchange_failed.send(
        sender=None,
        grant="on_behalf_of",
        subject="auth0|alice",
        audience="https://calendar-api.example.com",
        connection=None,
        requested_scope="calendar:write",
        claims=None,
        error="access_denied",
        error_description="no",
        status_code=403,
    )
    audit.flush()
    event = DelegationEvent.objects.get()
    assert (event.kind, event.outcome, event.upstream_error, event.reason) == (
        "exchange",
        "denied",
        "access_denied",
        "access_denied",
    )


def test_a_real_exchange_is_audited_with_cache_miss_then_hit(auth0_tenant, settings):
    from django_auth0_obo.exchange import get_token_on_behalf_of

    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIENCE": "https://mcp.example.com"}
    token = auth0_tenant.mint(audience="https://mcp.example.com", sub="auth0|carol")
    for _ in range(2):
        get_token_on_behalf_of(token, "https://calendar-api.example.com", "calendar:read")
    rows = list(
        DelegationEvent.objects.filter(kind="exchange")
        .order_by("id")
        .values_list("subject", "target_audience", "cache_hit", "outcome")
    )
    assert rows == [
        ("auth0|carol", "https://calendar-api.example.com", False, "allowed"),
        ("auth0|carol", "https://calendar-api.example.com", True, "allowed"),
    ]


# Retention.


def make_events(count: int, age_days: float) -> None:
    when = timezone.now() - timedelta(days=age_days)
    DelegationEvent.objects.bulk_create(
        DelegationEvent(created_at=when, subject=f"u{i}", outcome="allowed") for i in range(count)
    )


def test_purge_deletes_only_rows_past_retention_in_batches(settings, django_assert_num_queries):
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": API, "AUDIT_RETENTION_DAYS": 30}
    make_events(5, age_days=31)
    make_events(3, age_days=29)
    assert audit.purge_old_events(dry_run=True) == 5
    assert DelegationEvent.objects.count() == 8
    # 3 batches of 2 (select + delete each) and a final empty select.
    with django_assert_num_queries(7):
        assert audit.purge_old_events(batch_size=2) == 5
    assert DelegationEvent.objects.count() == 3
    assert audit.purge_old_events(days=0) == 3


@pytest.mark.urls("testproject.urls")
@pytest.mark.django_db(transaction=True)
def test_a_real_server_records_one_row_per_request(auth0_tenant, live_server):
    url = f"{live_server.url}/api/calendar/events"
    allowed = delegated(
        auth0_tenant, audience="https://calendar-api.example.com", scope="calendar:read"
    )
    denied = delegated(auth0_tenant, "rogue", audience="https://calendar-api.example.com")
    assert requests.get(url, headers={"Authorization": f"Bearer {allowed}"}, timeout=10).ok
    response = requests.get(url, headers={"Authorization": f"Bearer {denied}"}, timeout=10)
    assert response.status_code == 403
    assert list(DelegationEvent.objects.order_by("id").values_list("outcome", "reason")) == [
        ("allowed", ""),
        ("denied", "actor_not_allowed"),
    ]

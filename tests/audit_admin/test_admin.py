"""The DelegationEvent admin: read-only, the chain drawn as who acted for whom, CSV export,
a superuser-only purge, and a changelist that stays cheap on 100,000 rows."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from django_auth0_obo.admin.delegation_events import CheapCountPaginator, draw_chain
from django_auth0_obo.models import DelegationEvent

pytestmark = [pytest.mark.django_db, pytest.mark.urls("testproject.urls")]

CHANGELIST = "/admin/django_auth0_obo/delegationevent/"


def event(**fields) -> DelegationEvent:
    chain = fields.pop("chain", ["mcp-server-client"])
    defaults = {
        "subject": "auth0|alice",
        "current_actor": chain[0] if chain else "",
        "delegation_chain": chain,
        "depth": len(chain),
        "audience": "https://calendar-api.example.com",
        "method": "GET",
        "path": "/api/calendar/events",
        "view_name": "calendar-events",
        "outcome": "allowed",
    }
    return DelegationEvent.objects.create(**{**defaults, **fields})


@pytest.fixture
def staff_viewer(db) -> Client:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_delegationevent"))
    client = Client()
    client.force_login(user)
    return client


def test_the_chain_reads_user_then_first_actor_then_current_actor():
    assert draw_chain("user", ["agent", "mcp-server"]) == "user → mcp-server → agent"
    assert draw_chain("user", []) == "user"


def test_the_list_shows_time_subject_chain_audience_and_outcome(admin_client):
    event(chain=["agent", "mcp-server-client"])
    event(subject="auth0|bob", chain=["rogue"], outcome="denied", reason="actor_not_allowed")
    page = admin_client.get(CHANGELIST).content.decode()
    assert "auth0|alice → mcp-server-client → agent" in page
    assert "auth0|bob → rogue" in page
    assert "denied (actor_not_allowed)" in page
    assert "https://calendar-api.example.com" in page


def test_an_exchange_row_shows_where_the_token_went(admin_client):
    event(
        kind="exchange",
        audience="https://mcp.example.com",
        target_audience="https://calendar-api.example.com",
        cache_hit=True,
    )
    page = admin_client.get(CHANGELIST).content.decode()
    assert "https://mcp.example.com → https://calendar-api.example.com" in page


def test_filters_and_search_narrow_the_list(admin_client):
    event(subject="auth0|allowed-user")
    event(subject="auth0|denied-user", outcome="denied", reason="insufficient_scope")
    denied = admin_client.get(CHANGELIST, {"outcome__exact": "denied"}).content.decode()
    assert "auth0|denied-user" in denied
    assert "auth0|allowed-user" not in denied
    found = admin_client.get(CHANGELIST, {"q": "allowed-user"}).content.decode()
    assert "auth0|allowed-user" in found
    assert "auth0|denied-user" not in found
    by_actor = admin_client.get(CHANGELIST, {"current_actor": "mcp-server-client"})
    assert by_actor.status_code == 200


def test_the_detail_page_shows_the_full_chain_and_the_request_read_only(admin_client):
    row = event(chain=["agent", "mcp-server-client"], jti="jti-9", scopes="calendar:read")
    response = admin_client.get(f"{CHANGELIST}{row.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200
    assert '<ol class="auth0-obo-chain">' in page
    assert page.index("auth0|alice</code> <small>(user)") < page.index(
        "mcp-server-client</code> <small>(actor 1)"
    )
    assert "agent</code> <small>(current actor)" in page
    assert "/api/calendar/events" in page
    assert "jti-9" in page
    assert 'name="subject"' not in page  # no editable inputs


def test_nothing_can_be_added_changed_or_deleted_from_the_ui(admin_client):
    row = event()
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    admin_client.post(f"{CHANGELIST}{row.pk}/change/", {"subject": "mallory"})
    assert DelegationEvent.objects.get().subject == "auth0|alice"
    assert admin_client.get(f"{CHANGELIST}{row.pk}/delete/").status_code == 403
    page = admin_client.get(CHANGELIST).content.decode()
    assert 'value="delete_selected"' not in page


def test_only_superusers_get_the_purge_action(admin_client, staff_viewer):
    rows = [event(), event(), event()]
    assert 'value="purge_selected"' not in staff_viewer.get(CHANGELIST).content.decode()
    staff_viewer.post(CHANGELIST, {"action": "purge_selected", "_selected_action": [rows[0].pk]})
    assert DelegationEvent.objects.count() == 3
    assert 'value="purge_selected"' in admin_client.get(CHANGELIST).content.decode()
    admin_client.post(
        CHANGELIST, {"action": "purge_selected", "_selected_action": [rows[0].pk, rows[1].pk]}
    )
    assert list(DelegationEvent.objects.values_list("pk", flat=True)) == [rows[2].pk]


def test_csv_export_has_fixed_columns_and_neutralises_formulas(staff_viewer):
    row = event(subject='=HYPERLINK("http://evil")', chain=["agent", "mcp-server-client"])
    response = staff_viewer.post(CHANGELIST, {"action": "export_csv", "_selected_action": [row.pk]})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    header, line = list(csv.reader(io.StringIO(body)))
    assert header[:5] == ["created_at", "kind", "outcome", "reason", "subject"]
    assert "token" not in " ".join(header).replace("jti", "")
    values = dict(zip(header, line, strict=True))
    assert values["subject"].startswith("'=")
    assert values["delegation_chain"].endswith("→ mcp-server-client → agent")


def test_the_paginator_counts_exactly_below_its_limit_and_boundedly_above(db):
    for _ in range(5):
        event()
    assert CheapCountPaginator(DelegationEvent.objects.all(), 2).count == 5


@pytest.mark.slow
def test_the_changelist_stays_cheap_on_100000_rows(admin_client, django_assert_max_num_queries):
    now = timezone.now()
    actors = ["mcp-server-client", "agent-a", "agent-b", "rogue"]
    DelegationEvent.objects.bulk_create(
        (
            DelegationEvent(
                created_at=now - timedelta(minutes=i),
                subject=f"auth0|user{i % 500}",
                current_actor=actors[i % 4],
                delegation_chain=[actors[i % 4], "mcp-server-client"],
                depth=2,
                audience="https://calendar-api.example.com",
                outcome="denied" if i % 10 == 0 else "allowed",
                reason="actor_not_allowed" if i % 10 == 0 else "",
            )
            for i in range(100_000)
        ),
        batch_size=5000,
    )
    admin_client.get(CHANGELIST)  # warm the session and content types
    with django_assert_max_num_queries(10):
        response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.content.decode().count('class="action-select"') == 100
    with django_assert_max_num_queries(10):
        filtered = admin_client.get(
            CHANGELIST, {"outcome__exact": "denied", "current_actor": "rogue"}
        )
    assert filtered.status_code == 200
    with django_assert_max_num_queries(10):
        assert admin_client.get(CHANGELIST, {"p": "50"}).status_code == 200

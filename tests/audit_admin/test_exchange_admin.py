"""The ExchangedToken admin: read-only list, search, filters, revoke; never the token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from django_auth0_obo import crypto
from django_auth0_obo.models import ExchangedToken

pytestmark = [pytest.mark.django_db, pytest.mark.urls("testproject.urls")]

CHANGELIST = "/admin/django_auth0_obo/exchangedtoken/"
SECRET_TOKENS = [f"eyJhbGciOiJSUzI1NiJ9.secret-access-token-{i}.sig" for i in range(3)]


@pytest.fixture
def rows() -> list[ExchangedToken]:
    now = timezone.now()
    made = []
    for i, (subject, audience, hours) in enumerate(
        [
            ("auth0|alice", "https://calendar-api.example.com", 1),
            ("auth0|bob", "https://calendar-api.example.com", 1),
            ("auth0|alice", "https://api.example.com", -1),
        ]
    ):
        made.append(
            ExchangedToken.objects.create(
                key=f"{i}".rjust(64, "a"),
                subject=subject,
                actor="mcp-server-client",
                audience=audience,
                scope="calendar:read",
                token_type="Bearer",
                encrypted_token=crypto.encrypt_token(SECRET_TOKENS[i]),
                expires_at=now + timedelta(hours=hours),
                cached_until=now + timedelta(hours=hours),
                hit_count=i * 10,
            )
        )
    lease_until = now + timedelta(seconds=30)
    ExchangedToken.objects.create(
        key="lease".rjust(64, "b"),
        subject="",
        audience="",
        expires_at=lease_until,
        cached_until=lease_until,
    )
    return made


@pytest.fixture
def admin_client(db) -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def assert_no_token(html: str, rows: list[ExchangedToken]) -> None:
    for token in SECRET_TOKENS:
        assert token not in html
        assert "secret-access-token" not in html
    for row in rows:
        assert row.encrypted_token not in html
        assert row.key not in html
    assert "encrypted_token" not in html


def test_the_list_shows_who_for_whom_and_hits_but_never_the_token(admin_client, rows):
    response = admin_client.get(CHANGELIST)

    html = response.content.decode()
    assert response.status_code == 200
    assert "auth0|alice" in html
    assert "auth0|bob" in html
    assert "mcp-server-client" in html
    assert "https://calendar-api.example.com" in html
    assert response.context["cl"].result_count == 3  # the lease row is not a token
    assert_no_token(html, rows)


def test_the_detail_page_is_read_only_and_never_shows_the_token(admin_client, rows):
    response = admin_client.get(f"{CHANGELIST}{rows[0].pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "auth0|alice" in html
    assert 'name="_save"' not in html
    assert_no_token(html, rows)
    assert admin_client.post(f"{CHANGELIST}{rows[0].pk}/change/", {}).status_code == 403


def test_nothing_can_be_added(admin_client):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_search_by_subject(admin_client, rows):
    response = admin_client.get(CHANGELIST, {"q": "bob"})

    assert [r.subject for r in response.context["cl"].result_list] == ["auth0|bob"]


@pytest.mark.parametrize(("value", "count"), [("active", 2), ("expired", 1)])
def test_filter_by_expiry(admin_client, rows, value, count):
    response = admin_client.get(CHANGELIST, {"expiry": value})

    assert response.context["cl"].result_count == count


def test_filter_by_audience(admin_client, rows):
    response = admin_client.get(CHANGELIST, {"audience": "https://api.example.com"})

    assert [r.pk for r in response.context["cl"].result_list] == [rows[2].pk]


def test_revoke_deletes_the_selected_rows(admin_client, rows):
    response = admin_client.post(
        CHANGELIST,
        {"action": "revoke", "_selected_action": [rows[0].pk, rows[1].pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Revoked 2 cached token(s)" in response.content.decode()
    assert list(
        ExchangedToken.objects.exclude(encrypted_token="").values_list("pk", flat=True)
    ) == [rows[2].pk]


def test_the_bulk_delete_action_is_replaced_by_revoke(admin_client, rows):
    html = admin_client.get(CHANGELIST).content.decode()

    assert 'value="revoke"' in html
    assert 'value="delete_selected"' not in html


def test_a_viewer_without_delete_permission_cannot_revoke(rows):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_exchangedtoken"))
    client = Client()
    client.force_login(viewer)

    html = client.get(CHANGELIST).content.decode()
    client.post(CHANGELIST, {"action": "revoke", "_selected_action": [rows[0].pk]})

    assert 'value="revoke"' not in html
    assert ExchangedToken.objects.filter(pk=rows[0].pk).exists()
    assert_no_token(html, rows)


def test_the_actions_override_raises_no_deprecation_warning(admin_client, rows, recwarn):
    """Django 6.1 deprecates ``get_actions()`` overrides without ``action_location`` (the matrix
    runs this on the newest Django)."""
    admin_client.get(CHANGELIST)

    ours = [w for w in recwarn.list if "get_actions" in str(w.message)]
    assert ours == []

"""The ExchangedToken cache: at rest, per hit, when the database fails, leases, and purging."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_auth0_obo import crypto, token_cache
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.token_cache import purge_expired_tokens
from tests.exchange_support import DOWNSTREAM, THIS_API, configure, user_token

pytestmark = pytest.mark.django_db

TABLE = ExchangedToken._meta.db_table


@pytest.fixture
def tenant(auth0_tenant, settings):
    return configure(auth0_tenant, settings)


def table_dump() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(TABLE)}")
        return repr(cursor.fetchall())


def test_no_token_is_stored_in_plaintext(tenant):
    subject = user_token(tenant)
    result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    dump = table_dump()
    assert result["access_token"] not in dump
    assert subject not in dump
    for token in (result["access_token"], subject):  # nor any of its three parts
        for part in token.split("."):
            assert part not in dump
    row = ExchangedToken.objects.get()
    assert crypto.decrypt_token(row.encrypted_token) == result["access_token"]
    assert len(row.key) == 64
    assert int(row.key, 16) >= 0


@pytest.mark.django_db(transaction=True)
def test_a_hit_is_one_indexed_select_in_autocommit(auth0_tenant, settings, monkeypatch):
    tenant = configure(auth0_tenant, settings, AUDIT="off")
    monkeypatch.setattr(token_cache, "HIT_FLUSH_INTERVAL", 3600)
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    with CaptureQueriesContext(connection) as queries:
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert len(queries) == 1, [q["sql"] for q in queries]
    assert queries[0]["sql"].lstrip().upper().startswith("SELECT")
    assert "encrypted_token" in queries[0]["sql"]


def test_inside_a_transaction_a_hit_is_guarded_by_a_savepoint(tenant, monkeypatch):
    monkeypatch.setattr(token_cache, "HIT_FLUSH_INTERVAL", 3600)
    settings_off = {**tenant.django_settings(audience=THIS_API), "AUDIT": "off"}
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    with override_settings(AUTH0_OBO=settings_off), CaptureQueriesContext(connection) as queries:
        assert connection.in_atomic_block
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    sql = [q["sql"].split()[0].upper() for q in queries]
    assert sql == ["SAVEPOINT", "SELECT", "RELEASE"]


@pytest.mark.django_db(transaction=True)
def test_hits_are_counted_in_one_batched_update(auth0_tenant, settings, monkeypatch):
    tenant = configure(auth0_tenant, settings, AUDIT="off")
    monkeypatch.setattr(token_cache, "HIT_FLUSH_INTERVAL", 3600)
    subject = user_token(tenant)
    for _ in range(4):
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:write")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:write")

    with CaptureQueriesContext(connection) as queries:
        assert token_cache.flush_hits() == 4

    assert len(queries) == 1
    counts = dict(ExchangedToken.objects.values_list("scope", "hit_count"))
    assert counts == {"calendar:read": 3, "calendar:write": 1}
    assert ExchangedToken.objects.filter(last_used_at__isnull=False).count() == 2


def test_hit_counts_are_flushed_by_a_hit_after_the_interval(tenant, monkeypatch):
    monkeypatch.setattr(token_cache, "HIT_FLUSH_INTERVAL", 0)
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert ExchangedToken.objects.get().hit_count == 1


def fail_cache_queries(execute, sql, params, many, context):
    """A database that is down for the cache table (a fault a server cannot produce here)."""
    if TABLE in sql:
        raise OperationalError("connection to server was lost")
    return execute(sql, params, many, context)


def test_the_exchange_works_uncached_when_the_database_fails_with_one_warning(tenant, caplog):
    subject = user_token(tenant)
    caplog.set_level(logging.WARNING, logger="django_auth0_obo")

    with connection.execute_wrapper(fail_cache_queries):
        first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        second = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert first["access_token"]
    assert second["access_token"]
    assert tenant.count("token") == 2
    assert len(warnings) == 1
    assert "cache unavailable" in warnings[0].getMessage()
    assert "OperationalError" in warnings[0].getMessage()


def test_a_database_failure_after_the_call_still_returns_the_token(tenant, caplog):
    subject = user_token(tenant)
    calls = []

    def fail_writes(execute, sql, params, many, context):
        calls.append(sql)
        if TABLE in sql and "UPDATE" in sql.upper():
            raise OperationalError("disk I/O error")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_writes):
        result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert result["access_token"]
    assert "cache unavailable" in caplog.text
    assert not ExchangedToken.objects.exclude(encrypted_token="").exists()


def test_a_live_lease_of_another_process_is_awaited_not_duplicated(tenant, monkeypatch):
    """Another process claimed the key: we poll its row instead of calling the tenant."""
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    row = ExchangedToken.objects.get()
    stored = {f: getattr(row, f) for f in ("encrypted_token", "expires_at", "cached_until")}
    lease_until = timezone.now() + timedelta(seconds=30)
    ExchangedToken.objects.filter(pk=row.pk).update(
        encrypted_token="", cached_until=lease_until, expires_at=lease_until
    )
    tenant.reset_counts()
    pauses = []

    def other_process_finishes_while_we_wait(seconds):
        pauses.append(seconds)
        if len(pauses) == 3:
            ExchangedToken.objects.filter(pk=row.pk).update(**stored)

    monkeypatch.setattr(token_cache, "_wait", other_process_finishes_while_we_wait)
    result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert tenant.count("token") == 0
    assert crypto.decrypt_token(stored["encrypted_token"]) == result["access_token"]
    assert pauses == [0.01, 0.02, 0.04]  # polling backs off


def test_a_lapsed_lease_is_taken_over(tenant):
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    lapsed = timezone.now() - timedelta(seconds=1)
    ExchangedToken.objects.update(encrypted_token="", cached_until=lapsed, expires_at=lapsed)
    tenant.reset_counts()

    result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert tenant.count("token") == 1
    row = ExchangedToken.objects.get()
    assert crypto.decrypt_token(row.encrypted_token) == result["access_token"]


def test_a_failed_exchange_leaves_no_lease_behind(tenant):
    tenant.inject_fault("token", status=403, body={"error": "access_denied"})

    with pytest.raises(Exception, match="access_denied"):
        get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")

    assert not ExchangedToken.objects.exists()


def test_a_row_written_with_a_removed_key_is_replaced(tenant, settings, caplog):
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "TOKEN_ENCRYPTION_KEYS": [crypto.generate_key()]}

    result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert tenant.count("token") == 2
    assert "cannot be decrypted" in caplog.text
    row = ExchangedToken.objects.get()
    assert crypto.decrypt_token(row.encrypted_token) == result["access_token"]


def make_row(key: str, cached_until, *, lease: bool = False) -> ExchangedToken:
    return ExchangedToken.objects.create(
        key=key.ljust(64, "0"),
        subject="auth0|someone",
        audience=DOWNSTREAM,
        encrypted_token="" if lease else crypto.encrypt_token("t"),
        expires_at=cached_until,
        cached_until=cached_until,
    )


def test_purge_deletes_expired_rows_and_lapsed_leases_in_batches():
    now = timezone.now()
    for i in range(5):
        make_row(f"old{i}", now - timedelta(minutes=i + 1))
    make_row("lapsedlease", now - timedelta(seconds=5), lease=True)
    make_row("live", now + timedelta(hours=1))
    make_row("liveLease", now + timedelta(seconds=30), lease=True)

    assert purge_expired_tokens(batch_size=2, dry_run=True) == 6
    assert ExchangedToken.objects.count() == 8
    with CaptureQueriesContext(connection) as queries:
        assert purge_expired_tokens(batch_size=2) == 6

    deletes = [q for q in queries if q["sql"].upper().startswith("DELETE")]
    assert len(deletes) == 3
    assert sorted(ExchangedToken.objects.values_list("key", flat=True)) == [
        "live".ljust(64, "0"),
        "liveLease".ljust(64, "0"),
    ]
    assert purge_expired_tokens() == 0


def test_purge_refuses_a_zero_batch():
    with pytest.raises(ValueError, match="batch_size"):
        purge_expired_tokens(batch_size=0)


def test_the_admin_purge_command_uses_it(capsys):
    from django.core.management import call_command

    make_row("old", timezone.now() - timedelta(minutes=1))
    call_command("auth0_obo_purge")

    assert not ExchangedToken.objects.exists()


def test_a_token_that_cannot_be_stored_leaves_no_lease_behind(auth0_tenant, settings):
    from django.core.exceptions import ImproperlyConfigured

    tenant = configure(auth0_tenant, settings, TOKEN_ENCRYPTION_KEYS=["not-a-key"])

    with pytest.raises(ImproperlyConfigured, match="TOKEN_ENCRYPTION_KEYS"):
        get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")

    assert tenant.count("token") == 1
    assert not ExchangedToken.objects.exists()

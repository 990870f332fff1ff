"""The per-process memo of exchanged tokens: no SQL on a hit, and revocation reaches every worker.

In-process tests use the test database and the local-memory cache; the cross-process test runs
three real worker processes against a PostgreSQL database it creates and a Redis it shares
(both part of our test machines: if either is down the test fails rather than skips).
"""

from __future__ import annotations

import secrets
import time

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_auth0_obo import token_cache
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.token_cache import revoke_tokens
from django_auth0_obo.ttl_memo import TtlMemo
from tests.exchange_support import DOWNSTREAM, THIS_API, configure, user_token
from tests.process_support import (
    Worker,
    local_caches,
    migrate,
    postgres_database,  # noqa: F401 - a fixture
    redis_caches,
    worker_env,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(auth0_tenant, settings, monkeypatch):
    monkeypatch.setattr(token_cache, "HIT_FLUSH_INTERVAL", 3600)
    return configure(auth0_tenant, settings, AUDIT="off", TOKEN_MEMO_TTL=5)


def test_a_memoized_hit_runs_no_sql_even_inside_the_requests_transaction(tenant):
    subject = user_token(tenant)
    first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    with CaptureQueriesContext(connection) as queries:
        assert connection.in_atomic_block  # as under ATOMIC_REQUESTS
        again = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert [q["sql"] for q in queries] == []
    assert again["access_token"] == first["access_token"]
    assert tenant.count("token") == 1


def test_memoized_hits_are_still_counted(tenant):
    subject = user_token(tenant)
    for _ in range(4):
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    token_cache.flush_hits()
    assert ExchangedToken.objects.get().hit_count == 3


def test_a_revocation_in_this_process_is_seen_at_once(tenant):
    subject = user_token(tenant)
    first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    tenant.exchange_token_lifetime = 3599  # so the next token differs

    assert revoke_tokens(ExchangedToken.objects.all()) == 1
    fresh = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert fresh["access_token"] != first["access_token"]
    assert tenant.count("token") == 2


def test_memo_off_means_every_hit_asks_the_database(tenant, settings):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "TOKEN_MEMO_TTL": 0}
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    with CaptureQueriesContext(connection) as queries:
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    assert [q["sql"].split()[0].upper() for q in queries] == ["SAVEPOINT", "SELECT", "RELEASE"]
    assert len(token_cache.memo) == 0


def test_without_a_readable_generation_the_memo_is_not_used(tenant, settings, caplog):
    """Fail closed: a process that cannot see revocations serves from the database only."""
    settings.CACHES = {
        **settings.CACHES,
        "dead": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        },
    }
    working = settings.AUTH0_OBO
    settings.AUTH0_OBO = {**working, "CACHE_ALIAS": "dead"}
    subject = user_token(tenant)
    try:
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
        with CaptureQueriesContext(connection) as queries:
            get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    finally:
        settings.AUTH0_OBO = working  # the fixtures' teardown talks to the cache
    assert any(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)
    assert len(token_cache.memo) == 0
    assert tenant.count("token") == 1
    assert "Token memo off" in caplog.text


def test_the_memo_is_bounded_and_drops_the_least_recently_used():
    memo: TtlMemo[str, int] = TtlMemo(3)
    for i in range(5):
        memo.put(f"k{i}", i, until=100.0)
    assert len(memo) == 3
    assert memo.get("k0", now=1.0) is None
    assert memo.get("k4", now=1.0) == 4
    assert memo.get("k4", now=100.0) is None  # expired


def test_a_revocation_reaches_another_process_within_the_check_interval(
    auth0_tenant,
    postgres_database,  # noqa: F811 - the fixture imported above
):
    tenant = auth0_tenant
    subject = user_token(tenant)
    obo = tenant.django_settings(audience=THIS_API, AUDIT="off", TOKEN_MEMO_TTL=3600)
    shared = redis_caches()
    extra = {"OBO_SUBJECT": subject, "OBO_AUDIENCE": DOWNSTREAM, "OBO_SCOPE": "calendar:read"}
    migrate(worker_env(postgres_database, obo, shared, **extra))
    serving = Worker("serve", worker_env(postgres_database, obo, shared, **extra))
    revoking = Worker("serve", worker_env(postgres_database, obo, shared, **extra))
    isolated = Worker("serve", worker_env(postgres_database, obo, local_caches(), **extra))
    try:
        first = serving.ask("get")
        assert first["cache_hit"] is False
        assert isolated.ask("get")["cache_hit"] is True  # from the database, now memoized
        assert serving.ask("get") == first | {"cache_hit": True}
        assert tenant.count("token") == 1
        tenant.exchange_token_lifetime = 3599  # so the next token differs

        assert revoking.ask("revoke") == {"revoked": 1}
        time.sleep(token_cache.GENERATION_CHECK_INTERVAL + 0.5)

        again = serving.ask("get")
        assert again["cache_hit"] is False  # the memo (TTL 3600 s) was dropped
        assert again["token_sha256"] != first["token_sha256"]
        assert tenant.count("token") == 2
        # A process whose cache is its own cannot hear of it: TOKEN_MEMO_TTL bounds it (W003).
        assert isolated.ask("get") == first | {"cache_hit": True}
    finally:
        for worker in (serving, revoking, isolated):
            worker.stop()


@pytest.mark.urls("testproject.urls")
def test_the_admins_revoke_action_moves_the_shared_generation(tenant, admin_client):
    from django.core.cache import caches

    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")  # now memoized
    assert len(token_cache.memo) == 1
    before = caches["default"].get(token_cache.GENERATION_KEY)

    row = ExchangedToken.objects.get()
    admin_client.post(
        "/admin/django_auth0_obo/exchangedtoken/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )

    assert not ExchangedToken.objects.exists()
    assert len(token_cache.memo) == 0
    assert caches["default"].get(token_cache.GENERATION_KEY) not in (None, before)


def test_a_row_read_just_before_another_workers_revocation_is_not_memoized(tenant, monkeypatch):
    """The only mock: another worker's revocation landing between this worker's SELECT and its
    memo put, an ordering no server can be made to produce on demand."""
    monkeypatch.setattr(token_cache, "GENERATION_CHECK_INTERVAL", 0)  # every use compares
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    token_cache.memo.clear()  # this worker has not memoized it (another worker stored the row)
    select = token_cache._Attempt._select

    def select_then_revoked_elsewhere(attempt):
        row = select(attempt)
        monkeypatch.setattr(token_cache._Attempt, "_select", select)
        ExchangedToken.objects.all().delete()  # what another worker's revoke_tokens does
        caches["default"].set(token_cache.GENERATION_KEY, secrets.token_hex(8), None)
        return row

    monkeypatch.setattr(token_cache._Attempt, "_select", select_then_revoked_elsewhere)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")  # the row read before: served
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert tenant.count("token") == 2  # the revoked token was not served from the memo
    assert len(token_cache.memo) == 1  # the fresh one is memoized as usual

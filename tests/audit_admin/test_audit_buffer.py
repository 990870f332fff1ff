"""The buffered audit trail: batches, counted cache hits, the bound, a real database outage and a
gracefully stopped gunicorn worker.

In-process tests use a buffer without its writer thread and flush it themselves. The outage and
gunicorn tests run real processes against a PostgreSQL database they create (and Redis for the
gunicorn one); the outage is a real one: the database refuses connections and its backends are
terminated (``pg_terminate_backend``) from another connection. If PostgreSQL or Redis is down
these tests fail rather than skip.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from django_auth0_obo import audit, audit_buffer
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.testing.config import MCP_API
from tests.exchange_support import DOWNSTREAM, configure, user_token
from tests.process_support import (
    REDIS_URL,
    ROOT,
    Worker,
    local_caches,
    migrate,
    postgres_database,  # noqa: F401 - a fixture
    worker_env,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("testproject.urls")]

SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def row(subject: str = "auth0|alice", **fields) -> dict:
    return {"kind": "request", "subject": subject, "outcome": "allowed", **fields}


def hit(subject: str = "auth0|alice", outcome: str = "allowed") -> dict:
    return {
        "kind": "exchange",
        "subject": subject,
        "target_audience": DOWNSTREAM,
        "cache_hit": True,
        "outcome": outcome,
    }


@pytest.fixture
def buffered(settings):
    """AUDIT_SYNC off; the suite's buffer has no writer thread, so rows wait for flush()."""
    settings.AUTH0_OBO = {
        **(settings.AUTH0_OBO or {"DOMAIN": "t.example.com", "AUDIENCE": MCP_API}),
        "AUDIT_SYNC": False,
    }
    return audit_buffer.buffer


def test_n_identical_cache_hits_are_one_row_counting_n(auth0_tenant, settings, buffered):
    tenant = configure(auth0_tenant, settings, AUDIT="delegated", AUDIT_SYNC=False)
    subject = user_token(tenant)
    for _ in range(25):
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    assert not DelegationEvent.objects.exists()  # buffered, not written per call
    assert buffered.accounted() == 25

    assert audit.flush() == 2

    rows = {e.cache_hit: e for e in DelegationEvent.objects.all()}
    assert (rows[False].count, rows[True].count) == (1, 24)
    assert rows[True].last_seen_at >= rows[True].created_at
    assert rows[False].last_seen_at is None


def test_only_identical_hits_are_merged(buffered):
    for event in (hit("auth0|a"), hit("auth0|a"), hit("auth0|b"), hit("auth0|a", "denied")):
        audit_buffer.add(event)
    audit_buffer.add(row())  # request rows are never merged
    audit_buffer.add(row())
    assert audit.flush() == 5
    counts = sorted(DelegationEvent.objects.values_list("subject", "outcome", "count"))
    assert counts == [
        ("auth0|a", "allowed", 2),
        ("auth0|a", "denied", 1),
        ("auth0|alice", "allowed", 1),
        ("auth0|alice", "allowed", 1),
        ("auth0|b", "allowed", 1),
    ]


IDENTITY = {
    "outcome": "allowed",
    "grant": "on_behalf_of",
    "subject": "auth0|a",
    "audience": DOWNSTREAM,
    "requested_scope": "calendar:read",
    "granted_scope": "calendar:read",
    "cache_hit": True,
    "subject_audience": MCP_API,
    "claims": {"sub": "auth0|a", "azp": "app", "scope": "mcp:read", "jti": "j1"},
}


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "auth0|b"},
        {"audience": "https://other.example.com"},
        {"requested_scope": "calendar:write"},
        {"granted_scope": "calendar:read calendar:write"},
        {"subject_audience": "https://api.example.com"},
        {"claims": None},
        {"claims": {**IDENTITY["claims"], "jti": "j2"}},
        {"claims": {**IDENTITY["claims"], "org_id": "org_1"}},
        {"claims": {**IDENTITY["claims"], "act": {"sub": "agent"}}},
        {"claims": {**IDENTITY["claims"], "cnf": {"jkt": "k"}}},
    ],
    ids=lambda change: (
        "-".join(change) + ("-" + str(change["claims"]) if "claims" in change else "")
    ),
)
def test_hits_counted_by_identity_are_merged_only_when_every_field_is_the_same(
    buffered, settings, change
):
    """Repeated hits skip building their fields (counted under the caller's identity); a hit
    that differs in anything the row records gets its own row."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": "delegated", "CLIENT_ID": "mcp"}
    for _ in range(3):
        audit.record_exchange(**IDENTITY)
    audit.record_exchange(**{**IDENTITY, **change})
    assert audit.flush() == 2
    assert sorted(DelegationEvent.objects.values_list("count", flat=True)) == [1, 3]


def test_a_hit_after_its_row_was_written_starts_a_new_row(buffered, settings):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": "delegated"}
    audit.record_exchange(**IDENTITY)
    audit.record_exchange(**IDENTITY)
    assert audit.flush() == 1
    audit.record_exchange(**IDENTITY)  # the row it would count on is written
    assert audit.flush() == 1
    assert sorted(DelegationEvent.objects.values_list("count", flat=True)) == [1, 2]


def test_hits_with_claims_of_odd_json_types_are_still_counted(buffered, settings):
    """Claims read from a raw token may hold lists where strings belong: no identity, the
    fields decide, nothing raises."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": "delegated"}
    odd = {**IDENTITY, "claims": {"sub": "auth0|a", "scope": ["mcp:read"], "jti": {"x": 1}}}
    for _ in range(4):
        audit.record_exchange(**odd)
    assert audit.flush() == 1
    assert DelegationEvent.objects.get().count == 4


def test_the_csv_export_and_the_changelist_show_counts(buffered, admin_client):
    import csv
    import io

    from django_auth0_obo.admin.delegation_events import export_rows

    for _ in range(5):
        audit_buffer.add(hit())
    audit.flush()
    header, line = list(csv.reader(io.StringIO("".join(export_rows(DelegationEvent.objects)))))
    values = dict(zip(header, line, strict=True))
    assert values["count"] == "5"
    assert values["last_seen_at"]
    page = admin_client.get("/admin/django_auth0_obo/delegationevent/")
    assert page.status_code == 200
    assert b"column-count" in page.content


def test_rows_are_written_in_batches(buffered, settings):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT_BATCH_SIZE": 3}
    for i in range(7):
        audit_buffer.add(row(f"auth0|user-{i}"))
    with CaptureQueriesContext(connection) as queries:
        assert audit.flush() == 7
    inserts = [q for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 3
    assert DelegationEvent.objects.count() == 7


def test_the_buffer_is_bounded_and_says_so_loudly(buffered, settings, caplog):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT_MAX_BUFFERED": 3, "AUDIT_BATCH_SIZE": 1}
    for i in range(5):
        audit_buffer.add(row(f"auth0|user-{i}"))
    assert len(buffered) == 3
    with caplog.at_level(logging.ERROR, logger="django_auth0_obo"):
        assert audit.flush() == 3
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "AUDIT_MAX_BUFFERED=3" in record.getMessage()
    assert "2 delegation audit row(s) were dropped" in record.getMessage()
    # the oldest rows are the ones kept
    assert sorted(DelegationEvent.objects.values_list("subject", flat=True)) == [
        "auth0|user-0",
        "auth0|user-1",
        "auth0|user-2",
    ]


def test_audit_sync_writes_before_returning(settings):
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": MCP_API, "AUDIT_SYNC": True}
    audit_buffer.add(row())
    assert DelegationEvent.objects.count() == 1
    assert len(audit_buffer.buffer) == 0


def test_rows_queued_during_a_real_database_outage_are_written_when_it_returns(
    postgres_database,  # noqa: F811 - the fixture imported above
):
    obo = {"DOMAIN": "t.example.com", "AUDIENCE": MCP_API, "AUDIT_FLUSH_INTERVAL": 0.1}
    env = worker_env(postgres_database, obo, local_caches(), OBO_EVENTS="80", OBO_PAUSE="0.05")
    migrate(env)
    worker = Worker("audit-outage", env)  # queues 80 rows over about 4 s
    try:
        time.sleep(0.5)
        with psycopg.connect(SERVER, autocommit=True, connect_timeout=5) as admin:
            name = sql.Identifier(postgres_database)
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
            try:
                for _ in range(30):  # 3 s: whatever reconnects is cut again
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        [postgres_database],
                    )
                    time.sleep(0.1)
            finally:
                admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))
        result = worker.result()
    finally:
        worker.stop()

    assert result["refused_flushes"] >= 1  # the cut really hit the writer
    assert result["left"] == 0
    with psycopg.connect(SERVER.rsplit("/", 1)[0] + f"/{postgres_database}") as db:
        total, distinct = db.execute(
            "SELECT count(*), count(DISTINCT subject) FROM django_auth0_obo_delegationevent"
        ).fetchone()
    assert (total, distinct) == (80, 80)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_gracefully_stopped_gunicorn_worker_writes_every_audited_hit(
    auth0_tenant,
    postgres_database,  # noqa: F811 - the fixture imported above
):
    tenant = auth0_tenant
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "bench.loadsettings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{postgres_database}",
        "CACHE_URL": REDIS_URL,
        "BENCH_CACHE_PREFIX": f"gunicorn-test-{os.getpid()}-{port}",
        "AUTH0_DOMAIN": tenant.domain,
        "AUTH0_AUDIENCE": MCP_API,
        "AUTH0_CLIENT_ID": tenant.client_id,
        "AUTH0_CLIENT_SECRET": tenant.client_secret,
        "AUTH0_TLS_CA_BUNDLE": tenant.ca_bundle,
        # Only the worker's exit can write the rows: no interval flush, no full batch.
        "BENCH_AUTH0_OBO": '{"AUDIT_FLUSH_INTERVAL": 3600, "AUDIT_BATCH_SIZE": 100000}',
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env, check=True
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "testproject.wsgi:application", "-b",
         f"127.0.0.1:{port}", "-k", "gthread", "--workers", "1", "--threads", "4",
         "--log-level", "warning"],
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    token = tenant.mint(audience=MCP_API, scope="mcp:read")
    requests_sent = 60
    try:
        conn = wait_for(port)
        for _ in range(requests_sent):
            conn.request("GET", "/bench/obo", headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        conn.close()
        assert count_rows(postgres_database) == (0, 0)  # all still buffered in the worker
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    assert server.returncode == 0
    assert tenant.count("token") == 1
    assert count_rows(postgres_database) == (2, requests_sent)  # one miss row, one counted row


def wait_for(port: int) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/bench/open")
            conn.getresponse().read()
            return conn
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def count_rows(database: str) -> tuple[int, int]:
    with psycopg.connect(SERVER.rsplit("/", 1)[0] + f"/{database}") as db:
        rows, events = db.execute(
            "SELECT count(*), coalesce(sum(count), 0) FROM django_auth0_obo_delegationevent "
            "WHERE kind = 'exchange'"
        ).fetchone()
    return int(rows), int(events)

"""Single flight across processes: four worker processes, one call to the tenant, for the sync
exchange and for the async one (several coroutines in each process).

The workers are real Python processes that configure Django themselves against a database this
test creates (outside pytest-django's transaction, which other processes could not see into): a
SQLite file always, and a fresh database on the PostgreSQL server named by ``DATABASE_URL`` when
it is set (see ``tests/services.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
import pytest

from tests import services
from tests.exchange_support import DOWNSTREAM, THIS_API, user_token

WORKER = Path(__file__).resolve().parents[1] / "exchange_process_worker.py"
PROCESSES = 4
#: Coroutines awaiting the async exchange at once in each process.
COROUTINES = 3


@pytest.fixture(params=services.SHARED_DATABASES)
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fresh database the workers share (a ``DATABASES`` entry), dropped afterwards."""
    if request.param == "sqlite":
        # A generous busy timeout: four processes write the same file at once.
        yield {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "shared.sqlite3"),
            "OPTIONS": {"timeout": 30},
        }
        return
    url = services.database_url()
    assert url is not None
    if not urlsplit(url).scheme.startswith("postgres"):
        pytest.fail(f"the cross-process test knows how to create PostgreSQL databases only: {url}")
    yield from _shared_database(environ.Env.db_url_config(url))


def _shared_database(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    import psycopg
    from psycopg import sql

    name = f"{config.get('NAME') or 'test'}_processes_{uuid.uuid4().hex[:12]}"
    server = {
        "host": config.get("HOST") or "localhost",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",
        "connect_timeout": 5,
        "autocommit": True,
    }
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(**server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield {**config, "NAME": name}
    finally:
        with psycopg.connect(**server) as admin:
            admin.execute(drop)


def worker_env(database: dict[str, Any], obo_settings: dict, subject: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        OBO_DATABASE=json.dumps(database),
        OBO_SETTINGS=json.dumps(obo_settings),
        OBO_SUBJECT=subject,
        OBO_AUDIENCE=DOWNSTREAM,
        OBO_SCOPE="calendar:read",
        PYTHONPATH=str(WORKER.parent.parent),
    )
    return env


def run_workers(env: dict[str, str], *command: str) -> list[dict[str, Any]]:
    """Start :data:`PROCESSES` workers, let them all go at once, return what each printed."""
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *command],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # all four start together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        return [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


def test_four_processes_asking_for_the_same_token_make_one_call(auth0_tenant, shared_database):
    tenant = auth0_tenant
    subject = user_token(tenant)
    env = worker_env(
        shared_database, tenant.django_settings(audience=THIS_API, AUDIT="off"), subject
    )
    subprocess.run([sys.executable, str(WORKER), "migrate"], env=env, check=True, timeout=120)
    tenant.inject_fault("token", status=None, delay=1.0)  # a slow tenant: everyone piles up

    outputs = run_workers(env, "exchange")

    assert tenant.count("token") == 1
    assert len({o["pid"] for o in outputs}) == PROCESSES
    assert len({o["token_sha256"] for o in outputs}) == 1
    assert sorted(o["cache_hit"] for o in outputs) == [False, True, True, True]
    rows = subprocess.run(
        [sys.executable, str(WORKER), "rows"],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    ((key, encrypted),) = json.loads(rows.stdout.strip().splitlines()[-1])
    assert subject not in key + encrypted
    assert hashlib.sha256(b"").hexdigest() != key
    assert encrypted


@pytest.fixture
def shared_caches(shared_database: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The workers' ``CACHES``, shared too: a file cache next to the SQLite file; the
    ``CACHE_URL`` server next to the ``DATABASE_URL`` one (a file cache if it names none)."""
    on_servers = "sqlite" not in shared_database["ENGINE"] and services.cache_url() is not None
    return {"default": services.shared_cache("service" if on_servers else "file", tmp_path)}


def test_four_processes_awaiting_the_async_exchange_make_one_call(
    auth0_tenant, shared_database, shared_caches
):
    """``aget_token_on_behalf_of`` and ``VerifiedToken.aon_behalf_of``: three coroutines in each
    of four processes, one call to the tenant, one token for all twelve callers."""
    tenant = auth0_tenant
    subject = user_token(tenant)
    env = worker_env(
        shared_database, tenant.django_settings(audience=THIS_API, AUDIT="off"), subject
    )
    env.update(OBO_CACHE=json.dumps(shared_caches), OBO_RESOURCE_URL=f"{THIS_API}/")
    subprocess.run([sys.executable, str(WORKER), "migrate"], env=env, check=True, timeout=120)
    tenant.inject_fault("token", status=None, delay=1.0)  # a slow tenant: everyone piles up

    outputs = run_workers(env, "aexchange", str(COROUTINES))

    callers = PROCESSES * COROUTINES
    assert tenant.count("token") == 1
    assert len({o["pid"] for o in outputs}) == PROCESSES
    digests = [digest for o in outputs for digest in o["token_sha256"]]
    assert len(digests) == callers
    assert len(set(digests)) == 1
    hits = sorted(hit for o in outputs for hit in o["cache_hits"])
    assert hits == [False] + [True] * (callers - 1)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server (``DATABASE_URL``'s when it names one, else the
    local default), dropped afterwards; its name. Used by the perf helpers' process tests."""
    services.require_server("postgres")
    for config in _shared_database(environ.Env.db_url_config(services.postgres_url())):
        yield str(config["NAME"])

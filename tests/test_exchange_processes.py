"""Single flight across processes, on PostgreSQL: four worker processes, one call to the tenant.

The workers are real Python processes that configure Django themselves against a database this
test creates on the PostgreSQL server at 127.0.0.1:5432 (whatever DATABASE_URL says, and outside
pytest-django's transaction, which other processes could not see into). PostgreSQL is expected
to be running: if it is unreachable the test fails rather than skips.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.exchange_support import DOWNSTREAM, THIS_API, user_token

SERVER = "postgresql://postgres@127.0.0.1:5432/test"
WORKER = Path(__file__).with_name("exchange_process_worker.py")
PROCESSES = 4


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the workers, dropped afterwards."""
    name = f"test_auth0_obo_processes_{os.getpid()}"
    with psycopg.connect(SERVER, autocommit=True, connect_timeout=5) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(SERVER, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def worker_env(database: str, obo_settings: dict, subject: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        OBO_TEST_DB=database,
        OBO_SETTINGS=json.dumps(obo_settings),
        OBO_SUBJECT=subject,
        OBO_AUDIENCE=DOWNSTREAM,
        OBO_SCOPE="calendar:read",
        PYTHONPATH=str(WORKER.parent.parent),
    )
    return env


def test_four_processes_asking_for_the_same_token_make_one_call(auth0_tenant, postgres_database):
    tenant = auth0_tenant
    subject = user_token(tenant)
    env = worker_env(
        postgres_database, tenant.django_settings(audience=THIS_API, AUDIT="off"), subject
    )
    subprocess.run([sys.executable, str(WORKER), "migrate"], env=env, check=True, timeout=120)
    tenant.inject_fault("token", status=None, delay=1.0)  # a slow tenant: everyone piles up

    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "exchange"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # all four start together
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

    assert tenant.count("token") == 1
    assert len({o["pid"] for o in outputs}) == PROCESSES
    assert len({o["token_sha256"] for o in outputs}) == 1
    assert sorted(o["cache_hit"] for o in outputs) == [False, True, True, True]
    with psycopg.connect(SERVER.rsplit("/", 1)[0] + f"/{postgres_database}") as db:
        rows = db.execute(
            "SELECT key, encrypted_token FROM django_auth0_obo_exchangedtoken"
        ).fetchall()
    ((key, encrypted),) = rows
    assert subject not in key + encrypted
    assert hashlib.sha256(b"").hexdigest() != key
    assert encrypted

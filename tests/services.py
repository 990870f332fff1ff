"""Where the cross-process tests run (not a test module).

Every cross-process test runs on the embedded parts, which any machine has: a SQLite file that
several processes open, and Django's file-based cache, which they share through the file system.
When ``DATABASE_URL`` / ``CACHE_URL`` name a server (PostgreSQL, Redis...), the same tests run a
second time against it, under the names those URLs give (so helpers sharing one server do not
collide). Without those URLs the server variants are skipped: a laptop without PostgreSQL or Redis
still passes ``make test``.

CI must not skip silently: with ``REQUIRE_SERVICES=1`` both URLs must be set and must answer, or
the session stops with an error before any test runs (see :func:`unreachable_services`, called
from ``tests/conftest.py``).
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
import pytest

#: Environment variable that turns missing or silent services into a failed run.
REQUIRE_SERVICES = "REQUIRE_SERVICES"
#: Seconds to wait for a service to answer the reachability probe.
PROBE_TIMEOUT = 3

_PER_PROCESS_SCHEMES = ("locmemcache", "dummycache")


def services_required() -> bool:
    return os.environ.get(REQUIRE_SERVICES, "") not in ("", "0")


def database_url() -> str | None:
    """``DATABASE_URL`` when it names a database server (not SQLite), else None."""
    url = os.environ.get("DATABASE_URL") or None
    if url is None or urlsplit(url).scheme.startswith("sqlite"):
        return None
    return url


def cache_url() -> str | None:
    """``CACHE_URL`` when it names a cache that processes share, else None."""
    url = os.environ.get("CACHE_URL") or None
    if url is None or urlsplit(url).scheme in _PER_PROCESS_SCHEMES:
        return None
    return url


def unreachable_services() -> list[str]:
    """What is wrong with the configured services: empty when the run may go on."""
    problems: list[str] = []
    required = services_required()
    for name, url, probe in (
        ("DATABASE_URL", database_url(), _probe_database),
        ("CACHE_URL", cache_url(), _probe_cache),
    ):
        if url is None:
            if required:
                problems.append(f"{REQUIRE_SERVICES}=1 but {name} names no shared server.")
            continue
        error = probe(url)
        if error is not None and required:
            problems.append(f"{name} ({_without_password(url)}) does not answer: {error}")
    return problems


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _probe_database(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        import psycopg

        config = environ.Env.db_url_config(url)
        try:
            psycopg.connect(
                host=config.get("HOST") or "localhost",
                port=config.get("PORT") or 5432,
                user=config.get("USER") or None,
                password=config.get("PASSWORD") or None,
                dbname="postgres",
                connect_timeout=PROBE_TIMEOUT,
            ).close()
        except psycopg.Error as error:
            return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return None
    return _probe_tcp(parts.hostname, parts.port)


def _probe_cache(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss"):
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT).ping()
        except redis.RedisError as error:
            return str(error)
        return None
    if parts.scheme in ("filecache", "dbcache"):
        return None
    return _probe_tcp(parts.hostname, parts.port)


def _probe_tcp(host: str | None, port: int | None) -> str | None:
    if not host or not port:
        return None
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except OSError as error:
        return str(error)
    return None


# -- tests of PostgreSQL or Redis themselves ------------------------------------------------------

#: Where the tests that need the servers themselves (a real PostgreSQL outage, Redis's own
#: commands) find them when DATABASE_URL / CACHE_URL name none: the local defaults.
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/4"


def postgres_url() -> str:
    """``DATABASE_URL`` when it names PostgreSQL, else :data:`LOCAL_POSTGRES`."""
    url = database_url()
    if url is not None and urlsplit(url).scheme.startswith("postgres"):
        return url
    return LOCAL_POSTGRES


def redis_url() -> str:
    """``CACHE_URL`` when it names Redis, else :data:`LOCAL_REDIS`."""
    url = cache_url()
    if url is not None and urlsplit(url).scheme in ("redis", "rediss"):
        return url
    return LOCAL_REDIS


@functools.cache
def _server_problem(kind: str) -> str | None:
    """Why the ``kind`` server does not answer (probed once per session), or None."""
    if kind == "postgres":
        return _probe_database(postgres_url())
    return _probe_cache(redis_url())


def require_server(kind: str) -> None:
    """Skip the calling test when the PostgreSQL or Redis server (``kind``) does not answer: a
    laptop without them still passes ``make test``. Under ``REQUIRE_SERVICES=1`` (CI) nothing is
    skipped: the test runs and fails."""
    if services_required():
        return
    problem = _server_problem(kind)
    if problem is not None:
        url = postgres_url() if kind == "postgres" else redis_url()
        pytest.skip(f"no {kind} server at {_without_password(url)}: {problem}")


# -- shared caches -----------------------------------------------------------------------------

SHARED_CACHES = [
    pytest.param("file", id="file-cache"),
    pytest.param(
        "service",
        id="CACHE_URL",
        marks=pytest.mark.skipif(cache_url() is None, reason="CACHE_URL names no shared cache"),
    ),
]


def shared_cache(kind: str, directory: Path) -> dict[str, Any]:
    """A ``CACHES`` entry several processes share, under a key prefix no other run uses."""
    if kind == "file":
        config: dict[str, Any] = {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(directory / "shared-cache"),
        }
    else:
        url = cache_url()
        assert url is not None
        config = environ.Env.cache_url_config(url)
    return {**config, "KEY_PREFIX": f"auth0-obo-test-{uuid.uuid4().hex}"}


# -- shared databases ----------------------------------------------------------------------------

SHARED_DATABASES = [
    pytest.param("sqlite", id="sqlite-file"),
    pytest.param(
        "service",
        id="DATABASE_URL",
        marks=pytest.mark.skipif(
            database_url() is None, reason="DATABASE_URL names no database server"
        ),
    ),
]

"""Benchmark of the exchanged-token cache: ``python bench/exchange.py``.

Configures Django itself and starts a local stand-in tenant (real HTTPS on 127.0.0.1). Runs once
per database — SQLite (a file in a temporary directory) and PostgreSQL (a scratch database created
on ``BENCH_POSTGRES_URL``, default ``postgres://postgres@127.0.0.1:5432/test``, dropped after) —
by re-executing itself with ``--database``, then prints one table:

- cache hit: µs per ``get_token_on_behalf_of`` served from the database (token memo off), and
  database queries per hit (``CaptureQueriesContext``; the batched hit-count UPDATE is
  included, amortised);
- baselines measured in the same run: a bare indexed ``ExchangedToken.objects.filter(key=...)
  .first()``, the same lookup as a raw statement on a cursor (the floor: what a hit runs), and
  an uncached exchange (a miss: the tenant is called and the row written);
- upstream calls for 1,000 requests of one user session that each call 3 downstream APIs.

The cache rows run with ``AUDIT`` "off" so the cache is measured alone, plus one hit row with
the default settings (buffered ``AUDIT="delegated"``, token memo on). Then whole requests through
DRF (``bench.loadviews``, in-process, default settings): the same view with and without
``request.auth.on_behalf_of``, measured in alternating rounds so machine load affects both alike.
Times are wall-clock on whatever machine runs this; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
HITS = 5000
VIEW_CALLS = 2000
MISSES = 100
SESSION_REQUESTS = 1000
DOWNSTREAM_APIS = (
    ("https://calendar-api.example.com", "calendar:read"),
    ("https://api.example.com", "read:data"),
    ("https://files-api.example.com", "files:read"),
)


def configure_django(database: str, workdir: Path) -> str | None:
    """Configure Django for ``database``; return the scratch PostgreSQL database to drop."""
    import django
    from django.conf import settings

    scratch = None
    if database == "sqlite":
        db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(workdir / "bench.sqlite3")}
    else:
        import psycopg
        from psycopg import sql

        scratch = f"bench_auth0_obo_{os.getpid()}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        server = psycopg.conninfo.conninfo_to_dict(POSTGRES_URL)
        db = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": scratch,
            "USER": server.get("user", "postgres"),
            "HOST": server.get("host", "127.0.0.1"),
            "PORT": str(server.get("port", 5432)),
        }
    settings.configure(
        SECRET_KEY="bench-exchange-" + "x" * 40,
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
            "django_auth0_obo",
        ],
        DATABASES={"default": db},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        AUTH0_OBO={"DOMAIN": "127.0.0.1", "AUDIENCE": "https://mcp.example.com"},
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "django_auth0_obo.authentication.Auth0Authentication"
            ],
            "UNAUTHENTICATED_USER": None,
        },
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return scratch


def drop_scratch(scratch: str | None) -> None:
    if scratch is None:
        return
    import psycopg
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        )


def timed(calls: int, call: Callable[[], Any]) -> tuple[float, float, float]:
    """(mean, median, p99) in µs over ``calls`` calls."""
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.fmean(samples), samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def queries_per_call(calls: int, call: Callable[[], Any]) -> float:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        for _ in range(calls):
            call()
    return len(captured) / calls


def measure(database: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-exchange-") as workdir:
        scratch = configure_django(database, Path(workdir))
        try:
            return run_measurements(database)
        finally:
            drop_scratch(scratch)


def run_measurements(database: str) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings

    from django_auth0_obo import token_cache
    from django_auth0_obo.exchange import get_token_on_behalf_of
    from django_auth0_obo.models import ExchangedToken
    from django_auth0_obo.testing.config import MCP_API
    from django_auth0_obo.testing.tenant import LocalTenant

    with LocalTenant() as tenant:
        tenant.add_api("https://files-api.example.com", ["files:read"])
        tenant.add_client(
            tenant.client_id,
            tenant.client_secret,
            api=MCP_API,
            grants={api: [scope] for api, scope in DOWNSTREAM_APIS},
        )
        obo = tenant.django_settings(audience=MCP_API, AUDIT="off", TOKEN_MEMO_TTL=0)
        with override_settings(AUTH0_OBO=obo):
            assert settings.AUTH0_OBO["DOMAIN"] == tenant.domain
            api, scope = DOWNSTREAM_APIS[0]
            subject = tenant.mint(audience=MCP_API, scope="mcp:read")
            get_token_on_behalf_of(subject, api, scope)  # the miss that fills the cache
            key = ExchangedToken.objects.values_list("key", flat=True).get()

            def hit() -> None:
                get_token_on_behalf_of(subject, api, scope)

            def bare_select() -> None:
                ExchangedToken.objects.filter(key=key).first()

            def raw_select() -> None:
                with connection.cursor() as cursor:
                    cursor.execute(token_cache.lookup_sql("default"), [key])
                    cursor.fetchone()

            for _ in range(200):  # warm up both paths (connections, statement caches)
                hit()
                bare_select()
                raw_select()
            token_cache.flush_hits()
            hit_us = timed(HITS, hit)
            hit_queries = queries_per_call(HITS, hit)
            select_us = timed(HITS, bare_select)
            raw_us = timed(HITS, raw_select)

            subjects = [
                tenant.mint(sub=f"auth0|bench-{i}", audience=MCP_API, scope="mcp:read")
                for i in range(MISSES)
            ]
            misses = iter(subjects)
            tenant.reset_counts()
            miss_us = timed(MISSES, lambda: get_token_on_behalf_of(next(misses), api, scope))
            assert tenant.count("token") == MISSES

            ExchangedToken.objects.all().delete()
            tenant.reset_counts()
            session = tenant.mint(sub="auth0|session-user", audience=MCP_API, scope="mcp:read")
            start = time.perf_counter()
            for _ in range(SESSION_REQUESTS):
                for downstream, downstream_scope in DOWNSTREAM_APIS:
                    get_token_on_behalf_of(session, downstream, downstream_scope)
            session_seconds = time.perf_counter() - start
            upstream_calls = tenant.count("token")

        defaults = tenant.django_settings(audience=MCP_API, AUDIT_SYNC=False)  # the default
        with override_settings(AUTH0_OBO=defaults):
            default_hit_us = timed(HITS, hit)  # default AUDIT (buffered) and token memo
            default_hit_queries = queries_per_call(HITS, hit)
            views = measure_views(tenant)
    return {
        "database": database,
        "hit_us": hit_us,
        "hit_queries": hit_queries,
        "select_us": select_us,
        "raw_select_us": raw_us,
        "miss_us": miss_us,
        "session_requests": SESSION_REQUESTS,
        "session_exchanges": SESSION_REQUESTS * len(DOWNSTREAM_APIS),
        "session_upstream_calls": upstream_calls,
        "session_seconds": session_seconds,
        "default_hit_us": default_hit_us,
        "default_hit_queries": default_hit_queries,
        **views,
    }


def measure_views(tenant: Any) -> dict[str, Any]:
    """Median µs per request through DRF: the bench view with and without the exchange (default
    settings), in alternating rounds; the audit buffer is flushed and counted at the end."""
    from rest_framework.test import APIRequestFactory

    from bench.loadviews import MeView, OboView
    from django_auth0_obo import audit
    from django_auth0_obo.models import DelegationEvent
    from django_auth0_obo.testing.config import MCP_API

    factory = APIRequestFactory()
    header = "Bearer " + tenant.mint(audience=MCP_API, scope="mcp:read")
    me, obo = MeView.as_view(), OboView.as_view()

    def call(view: Any) -> Callable[[], Any]:
        def request() -> None:
            response = view(factory.get("/bench/view", HTTP_AUTHORIZATION=header))
            assert response.status_code == 200, response.data

        return request

    for _ in range(200):
        call(me)()
        call(obo)()
    audit.flush()
    DelegationEvent.objects.all().delete()
    plain: list[float] = []
    exchanging: list[float] = []
    rounds = 10
    for _ in range(rounds):
        plain.append(timed(VIEW_CALLS // rounds, call(me))[1])  # medians: robust to spikes
        exchanging.append(timed(VIEW_CALLS // rounds, call(obo))[1])
    audit.flush()
    rows = DelegationEvent.objects.count()
    events = sum(DelegationEvent.objects.values_list("count", flat=True))
    return {
        "view_plain_us": statistics.median(plain),
        "view_obo_us": statistics.median(exchanging),
        "view_obo_requests": VIEW_CALLS,
        "view_audit_rows": rows,
        "view_audit_events": events,
    }


def report(results: list[dict[str, Any]]) -> None:
    print(
        f"cache hits: {HITS} per database; misses: {MISSES}; AUDIT off, TOKEN_MEMO_TTL=0; "
        "times in µs"
    )
    print()
    header = (
        f"{'database':<9} {'hit mean/p50/p99':>18} {'queries/hit':>11} {'ORM .first()':>12} "
        f"{'raw SELECT':>10} {'hit÷ORM':>8} {'hit÷raw':>8} {'miss':>7} {'miss÷hit':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        mean, p50, p99 = r["hit_us"]
        orm, raw, miss = r["select_us"][0], r["raw_select_us"][0], r["miss_us"][0]
        print(
            f"{r['database']:<9} {f'{mean:.0f}/{p50:.0f}/{p99:.0f}':>18} "
            f"{r['hit_queries']:>11.3f} {orm:>12.0f} {raw:>10.0f} {mean / orm:>8.2f} "
            f"{mean / raw:>8.2f} {miss:>7.0f} {miss / mean:>8.1f}"
        )
    print()
    print()
    print("default settings (AUDIT='delegated', buffered; TOKEN_MEMO_TTL=5):")
    for r in results:
        mean, p50, p99 = r["default_hit_us"]
        plain, obo = r["view_plain_us"], r["view_obo_us"]
        print(
            f"{r['database']}: hit {mean:.0f}/{p50:.0f}/{p99:.0f} µs mean/p50/p99, "
            f"{r['default_hit_queries']:.3f} queries/hit; DRF view p50 {plain:.0f} µs, with the "
            f"exchange {obo:.0f} µs -> ratio {plain / obo:.2f} (target >= 0.6); "
            f"{r['view_obo_requests']} OBO requests -> {r['view_audit_rows']} audit rows "
            f"counting {r['view_audit_events']} events"
        )
    print()
    for r in results:
        target = "ok" if r["session_upstream_calls"] <= len(DOWNSTREAM_APIS) else "OVER TARGET"
        print(
            f"{r['database']}: {r['session_requests']} requests x {len(DOWNSTREAM_APIS)} "
            f"downstream APIs = {r['session_exchanges']} exchanges -> "
            f"{r['session_upstream_calls']} upstream calls (target <= {len(DOWNSTREAM_APIS)}: "
            f"{target}); {r['session_seconds'] * 1e3:.0f} ms in all"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    if args.database != "both":
        print(json.dumps(measure(args.database)))
        return
    results = []
    for database in ("sqlite", "postgres"):
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        output = subprocess.run(
            [sys.executable, __file__, "--database", database],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(results, indent=2))
    report(results)


if __name__ == "__main__":
    main()

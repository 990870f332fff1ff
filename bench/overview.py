"""Benchmark of the delegation overview admin page on a million audit rows.

    python bench/overview.py                      # SQLite (a temporary file), then PostgreSQL
    python bench/overview.py --database sqlite    # one of them
    python bench/overview.py --rows 200000        # a smaller table

PostgreSQL is reached through ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/overview``; the database is created when missing and its
audit table emptied before seeding). Each database runs in its own interpreter (this script
re-executes itself with ``--database``) using the example project's settings, so the page is
rendered exactly as in the admin: a logged-in superuser's GET through Django's test client.

Seeding is a bulk insert (``executemany`` on SQLite, ``COPY`` on PostgreSQL) of ``--rows`` rows
spread over the last ``--span-days`` days (default 30, the page's default period: whole local
days ending today, so every row but the oldest day's before its midnight is aggregated): 12
actors, 6 APIs, 20,000 users, 10 % denied with five reasons, 15 % exchanges (80 % cache hits),
20 % nested chains, 5 % aggregated rows with ``count`` > 1.

Printed, best of ``--repeats`` (default 5) interleaved runs: the overview page; as baselines
measured in the same run, the changelist page (same filters: none) and a bare ``COUNT(*)`` of the
table; the ratios; and the time of each of the overview's queries. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POSTGRES_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/overview")
OVERVIEW = "/admin/django_auth0_obo/delegationevent/overview/"
CHANGELIST = "/admin/django_auth0_obo/delegationevent/"

ACTORS = [f"agent-{i:02d}" for i in range(10)] + ["mcp-server-client", "rogue-agent"]
APIS = [f"https://api-{name}.example.com" for name in ("calendar", "files", "mail", "crm", "hr")]
APIS.append("https://mcp.example.com")
REASONS = [
    "actor_not_allowed",
    "insufficient_scope",
    "delegation_too_deep",
    "access_denied",
    "invalid_dpop_proof",
]
COLUMNS = (
    "created_at",
    "kind",
    "grant",
    "subject",
    "current_actor",
    "delegation_chain",
    "depth",
    "azp",
    "org_id",
    "audience",
    "scopes",
    "method",
    "path",
    "view_name",
    "outcome",
    "reason",
    "jkt",
    "jti",
    "target_audience",
    "requested_scope",
    "granted_scope",
    "cache_hit",
    "upstream_error",
    "actor_client_id",
    "actor_profile",
    "subject_verified",
    "count",
    "last_seen_at",
)


def generate(rows: int, span_days: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """Deterministic rows (seeded RNG), newest last; timestamps spread over ``span_days``.

    Also the seed of the million-row browser test (tests/browser/test_overview_million.py)."""
    rng = random.Random(13)
    span = span_days * 86400 - 60
    chains = {  # the JSON of each chain, encoded once (a few dozen chains for a million rows)
        (actor, nested): json.dumps(
            [actor, "mcp-server-client"] if nested and actor != "mcp-server-client" else [actor]
        )
        for actor in ACTORS
        for nested in (False, True)
    }
    for i in range(rows):
        created = now - timedelta(seconds=span * (rows - i) / rows)
        actor = ACTORS[min(int(rng.expovariate(0.45)), len(ACTORS) - 1)]
        nested = rng.random() < 0.2
        chain = chains[(actor, nested)]
        exchange = rng.random() < 0.15
        denied = rng.random() < (0.6 if actor == "rogue-agent" else 0.08)
        count = rng.randint(2, 20) if rng.random() < 0.05 else 1
        api = APIS[min(int(rng.expovariate(0.7)), len(APIS) - 2)]
        yield (
            created,
            "exchange" if exchange else "request",
            "on_behalf_of" if exchange else "",
            f"auth0|user{int(rng.paretovariate(1.2)) % 20000:05d}",
            actor,
            chain,
            2 if nested and actor != "mcp-server-client" else 1,
            "client-app",
            "",
            "https://mcp.example.com" if exchange else api,
            "read",
            "" if exchange else "GET",
            "" if exchange else "/api/items",
            "" if exchange else "items",
            "denied" if denied else "allowed",
            rng.choice(REASONS) if denied else "",
            "",
            f"jti-{i}",
            api if exchange else "",
            "read" if exchange else "",
            "" if denied or not exchange else "read",
            (rng.random() < 0.8) if exchange else None,
            "",
            "",
            "",
            True,
            count,
            created if count > 1 else None,
        )


def configure(database: str, workdir: Path) -> None:
    if database == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'overview.sqlite3'}"
    else:
        os.environ["DATABASE_URL"] = POSTGRES_URL
        ensure_postgres_database(POSTGRES_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    os.environ["CACHE_URL"] = "locmemcache://"
    import django

    django.setup()


def ensure_postgres_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    info = psycopg.conninfo.conninfo_to_dict(url)
    name = str(info.get("dbname") or "overview")
    maintenance = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def seed(rows: int, span_days: int) -> float:
    """Empty the audit table and bulk-insert ``rows`` rows; return the seconds it took.

    Through the default connection, in autocommit mode (as a script, or a test run with
    ``transaction=True``); SQLite's journal and sync settings are restored afterwards."""
    from django.db import connection

    from django_auth0_obo.models import DelegationEvent

    table = DelegationEvent._meta.db_table
    now = datetime.now(UTC)
    started = time.perf_counter()
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'TRUNCATE "{table}"')
            with cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                for row in generate(rows, span_days, now):
                    copy.write_row(row)
            # As autovacuum leaves a table: statistics and visibility map up to date.
            cursor.execute(f'VACUUM ANALYZE "{table}"')
        return time.perf_counter() - started
    connection.ensure_connection()
    raw: sqlite3.Connection = connection.connection
    journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = raw.execute("PRAGMA synchronous").fetchone()[0]
    # No journal, no fsync while seeding (the disk is shared), one transaction for all rows.
    raw.execute("PRAGMA journal_mode=OFF")
    raw.execute("PRAGMA synchronous=OFF")
    try:
        raw.execute("BEGIN")
        raw.execute(f'DELETE FROM "{table}"')
        marks = ", ".join("?" for _ in COLUMNS)
        insert = f'INSERT INTO "{table}" ({columns}) VALUES ({marks})'
        batch: list[tuple[Any, ...]] = []
        for row in generate(rows, span_days, now):
            batch.append(_sqlite_row(row))
            if len(batch) == 20000:
                raw.executemany(insert, batch)
                batch.clear()
        raw.executemany(insert, batch)
        raw.execute("COMMIT")
        raw.execute("ANALYZE")
    finally:
        raw.execute(f"PRAGMA journal_mode={journal}")
        raw.execute(f"PRAGMA synchronous={synchronous}")
    return time.perf_counter() - started


_DATETIMES = (COLUMNS.index("created_at"), COLUMNS.index("last_seen_at"))


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Datetimes as Django stores them on SQLite (naive UTC text)."""
    values = list(row)
    for i in _DATETIMES:
        if values[i] is not None:
            values[i] = values[i].replace(tzinfo=None).isoformat(" ")
    return tuple(values)


def best(repeats: int, calls: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Best wall time of each call over ``repeats`` interleaved rounds (load hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def measure(
    database: str,
    rows: int,
    span_days: int,
    repeats: int,
    reuse: bool = False,
    screenshot: str | None = None,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-overview-"))
    try:
        return _measure(database, workdir, rows, span_days, repeats, reuse, screenshot)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)


def _measure(
    database: str,
    workdir: Path,
    rows: int,
    span_days: int,
    repeats: int,
    reuse: bool,
    screenshot: str | None,
) -> dict[str, Any]:
    configure(database, workdir)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from django_auth0_obo.models import DelegationEvent

    call_command("migrate", verbosity=0)
    reused = reuse and DelegationEvent.objects.count() == rows
    seconds = 0.0 if reused else seed(rows, span_days)
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", "bench"
    )
    client = Client()
    client.force_login(user)

    def get(url: str) -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")

    def bare_count() -> None:
        DelegationEvent.objects.count()

    get(OVERVIEW)  # warm: templates, content types, the session
    get(CHANGELIST)
    timings = best(
        repeats,
        {
            "overview": lambda: get(OVERVIEW),
            "changelist": lambda: get(CHANGELIST),
            "count": bare_count,
        },
    )
    with CaptureQueriesContext(connection) as captured:
        get(OVERVIEW)
    queries = [
        (float(q["time"]), " ".join(q["sql"].split())[:90]) for q in captured.captured_queries
    ]
    drawn = None
    if screenshot:
        html = client.get(OVERVIEW).content.decode()
        pairs = DelegationEvent.objects.values("current_actor", "audience", "target_audience")
        expected = min(
            len(
                {
                    (p["current_actor"], p["target_audience"] or p["audience"])
                    for p in pairs.distinct()
                }
            ),
            40,
        )
        drawn = {"edges": render_in_chromium(html, Path(screenshot)), "expected": expected}
    return {
        "database": f"{database} ({connection.vendor})",
        "rows": rows,
        "seed_seconds": seconds,
        "timings": timings,
        "queries": queries,
        "chromium": drawn,
    }


def render_in_chromium(html: str, path: Path) -> int:
    """Render the page's HTML in Chromium (no server: the SVG is inline), screenshot it, and
    return how many graph edges the browser laid out."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_content(html, wait_until="domcontentloaded")
            edges = page.locator("svg.auth0-obo-graph g.edge").count()
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    return edges


def report(result: dict[str, Any]) -> None:
    t = result["timings"]
    seeded = f"seeded in {result['seed_seconds']:.1f} s"
    print(f"\n{result['database']}: {result['rows']:,} rows ({seeded})")
    print(f"  overview page (30 days)   {t['overview'] * 1000:8.1f} ms")
    print(
        f"  changelist page           {t['changelist'] * 1000:8.1f} ms   "
        f"overview/changelist = {t['overview'] / t['changelist']:.2f}x"
    )
    print(
        f"  bare COUNT(*)             {t['count'] * 1000:8.1f} ms   "
        f"overview/COUNT(*)   = {t['overview'] / t['count']:.2f}x"
    )
    if result.get("chromium"):
        c = result["chromium"]
        print(f"  Chromium drew {c['edges']} graph edges (database: {c['expected']})")
    print("  the overview's queries (one render):")
    for seconds, sql in result["queries"]:
        print(f"    {seconds * 1000:8.1f} ms  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--span-days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--reuse", action="store_true", help="keep a PostgreSQL table that has --rows rows"
    )
    parser.add_argument(
        "--screenshot", metavar="PNG", help="also render the page in Chromium and save a screenshot"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.database != "both":
        result = measure(
            args.database, args.rows, args.span_days, args.repeats, args.reuse, args.screenshot
        )
        print(json.dumps(result) if args.json else "", end="")
        if not args.json:
            report(result)
        return
    for database in ("sqlite", "postgres"):
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--database",
                database,
                "--rows",
                str(args.rows),
                "--span-days",
                str(args.span_days),
                "--repeats",
                str(args.repeats),
                *(["--reuse"] if args.reuse else []),
                *(
                    ["--screenshot", args.screenshot.replace(".png", f"-{database}.png")]
                    if args.screenshot
                    else []
                ),
                "--json",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        report(json.loads(output.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()

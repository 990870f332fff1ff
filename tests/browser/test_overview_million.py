"""The delegation overview on a million audit rows, in Chromium through the live server.

The rows are ``bench/overview.py``'s (same generator and bulk insert: ``executemany`` on SQLite,
``COPY`` on PostgreSQL when ``DATABASE_URL`` names it): 12 actors, 6 APIs, 20,000 users, nested
chains, refusals, exchanges with cache hits and misses, aggregated rows, spread over the last 30
days. Every number the browser shows is checked against plain aggregates of the same rows
(``overview_numbers.expected_from_database``), not the page's own queries. Slow: a quick local
run may skip it (``-m "not slow"``); CI runs it on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User

from bench.overview import seed
from django_auth0_obo.admin.overview import MAX_ACTORS, MAX_EDGES, MAX_PATHS
from django_auth0_obo.models import DelegationEvent
from tests.browser.chromium import (
    ADMIN_PASSWORD,
    OVERVIEW,
    SCREENSHOTS,
    chromium_page,
    log_in,
)
from tests.browser.overview_numbers import assert_busiest_shown, expected_from_database, shown

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("testproject.urls"),
]

ROWS = 1_000_000
#: Generous: one render aggregates every row, on a shared machine (no timing is asserted).
PAGE_TIMEOUT_MS = 300_000


def test_the_overview_of_a_million_rows_shows_the_databases_numbers_in_chromium(live_server):
    seconds = seed(ROWS, span_days=30)
    assert DelegationEvent.objects.count() == ROWS
    started = time.perf_counter()
    expected = expected_from_database()  # before Playwright's event loop, where the ORM may not run
    print(f"seeded in {seconds:.1f} s, expected in {time.perf_counter() - started:.1f} s")
    User.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "delegation-overview-1m.png"

    with chromium_page(timeout_ms=PAGE_TIMEOUT_MS) as page:
        started = time.perf_counter()
        log_in(page, live_server.url, OVERVIEW)
        print(f"logged in and rendered in {time.perf_counter() - started:.1f} s")
        drawn = shown(page)
        notes = page.locator(".auth0-obo-note").all_inner_texts()
        box = page.locator("svg.auth0-obo-graph").bounding_box()
        page.screenshot(path=str(shot), full_page=True)

    # Nearly every row is in the period (the oldest day's hours before midnight are not).
    assert drawn.totals["allowed"] + drawn.totals["denied"] > ROWS * 0.9
    assert drawn.totals == expected.totals
    assert drawn.days == expected.days
    assert drawn.cache_days == expected.cache_days
    assert len(expected.edges) > MAX_EDGES  # the cap is exercised: only the busiest are drawn
    assert_busiest_shown(drawn.edges, expected.edges, MAX_EDGES)
    assert_busiest_shown(drawn.actors, expected.actors, MAX_ACTORS)
    assert len(expected.paths) > MAX_PATHS
    assert_busiest_shown(drawn.paths, expected.paths, MAX_PATHS)
    assert any("Only the busiest edges" in note for note in notes)
    assert box is not None
    assert box["width"] > 600
    assert shot.stat().st_size > 1000
    print(f"screenshot: {shot}")

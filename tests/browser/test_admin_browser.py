"""The audit admin in a real browser: Debian's Chromium driven by Playwright against the live
server. Without Chromium it skips, except under ``REQUIRE_BROWSER=1`` (CI), where it fails (see
``conftest.py``); a browser that is there but cannot start always fails."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from django_auth0_obo.models import DelegationEvent
from tests.browser.chromium import (
    ADMIN_PASSWORD,
    CHANGELIST,
    OVERVIEW,
    SCREENSHOTS,
    chromium_page,
    log_in,
)
from tests.browser.overview_numbers import expected_from_rows, shown
from tests.demo_run import DemoRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("testproject.urls")]


def seed_events() -> DelegationEvent:
    """A few rows: allowed and denied, direct, one hop and nested chains; returns the nested one."""
    now = timezone.now()
    common = {"audience": "https://calendar-api.example.com", "method": "GET"}
    DelegationEvent.objects.create(
        created_at=now - timedelta(minutes=3),
        subject="auth0|alice",
        current_actor="mcp-server-client",
        delegation_chain=["mcp-server-client"],
        depth=1,
        path="/api/calendar/events",
        outcome="allowed",
        **common,
    )
    DelegationEvent.objects.create(
        created_at=now - timedelta(minutes=2),
        subject="auth0|bob",
        current_actor="rogue-agent",
        delegation_chain=["rogue-agent"],
        depth=1,
        path="/api/calendar/events",
        outcome="denied",
        reason="actor_not_allowed",
        **common,
    )
    DelegationEvent.objects.create(
        created_at=now - timedelta(minutes=1),
        kind="exchange",
        grant="on_behalf_of",
        subject="auth0|alice",
        current_actor="mcp-server-client",
        delegation_chain=["mcp-server-client"],
        depth=1,
        audience="https://mcp.example.com",
        target_audience="https://calendar-api.example.com",
        requested_scope="calendar:read",
        granted_scope="calendar:read",
        cache_hit=False,
        outcome="allowed",
    )
    return DelegationEvent.objects.create(
        created_at=now,
        subject="auth0|carol",
        current_actor="agent",
        delegation_chain=["agent", "mcp-server-client"],
        depth=2,
        path="/api/calendar/events",
        outcome="denied",
        reason="delegation_too_deep",
        jti="jti-nested",
        **common,
    )


def test_an_admin_reads_the_delegation_trail_in_chromium(live_server):
    User.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    nested = seed_events()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    with chromium_page(width=1600) as page:
        log_in(page, live_server.url, CHANGELIST)

        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 4
        headers = page.locator("#result_list thead th").all_inner_texts()
        joined = " | ".join(h.strip().lower() for h in headers)
        for column in ("created at", "subject", "chain", "audience", "outcome"):
            assert column in joined
        body = page.locator("#result_list").inner_text()
        assert "auth0|carol → mcp-server-client → agent" in body
        assert "auth0|bob → rogue-agent" in body
        assert "https://mcp.example.com → https://calendar-api.example.com" in body
        saved.append(SCREENSHOTS / "delegation-events-list.png")
        page.screenshot(path=str(saved[-1]), full_page=True)

        page.locator("#changelist-filter a", has_text="denied").first.click()
        page.wait_for_url("**outcome__exact=denied**")
        denied_rows = page.locator("#result_list tbody tr")
        assert denied_rows.count() == 2
        denied_text = page.locator("#result_list").inner_text()
        assert "auth0|alice" not in denied_text
        assert "denied (actor_not_allowed)" in denied_text
        saved.append(SCREENSHOTS / "delegation-events-denied.png")
        page.screenshot(path=str(saved[-1]), full_page=True)

        page.goto(f"{live_server.url}{CHANGELIST}{nested.pk}/change/")
        chain = page.locator("ol.auth0-obo-chain li").all_inner_texts()
        assert chain == [
            "auth0|carol (user)",
            "mcp-server-client (actor 1)",
            "agent (current actor)",
        ]
        detail = page.locator("#content").inner_text()
        assert "/api/calendar/events" in detail
        assert "delegation_too_deep" in detail
        assert "jti-nested" in detail
        saved.append(SCREENSHOTS / "delegation-event-detail.png")
        page.screenshot(path=str(saved[-1]), full_page=True)

    for path in saved:
        assert path.stat().st_size > 1000
        print(f"screenshot: {path}")


def seed_demo_week() -> None:
    """What the demo writes (exchanges with a miss then hits, calls acted by the MCP server, the
    rogue client refused, a nested chain), spread over a week, some rows aggregated."""
    now = timezone.now()
    calendar, mcp = "https://calendar-api.example.com", "https://mcp.example.com"
    exchange = {
        "kind": "exchange",
        "grant": "on_behalf_of",
        "subject": "auth0|alice",
        "current_actor": "mcp-server-client",
        "delegation_chain": ["mcp-server-client"],
        "depth": 1,
        "audience": mcp,
        "target_audience": calendar,
        "outcome": "allowed",
    }
    for day in range(7):
        at = now - timedelta(days=day, minutes=5)
        DelegationEvent.objects.create(created_at=at, cache_hit=False, **exchange)
        DelegationEvent.objects.create(
            created_at=at,
            cache_hit=True,
            count=3 + day,
            last_seen_at=at + timedelta(minutes=2),
            **exchange,
        )
        for subject in ("auth0|alice", "auth0|bob")[: 1 + day % 2]:
            DelegationEvent.objects.create(
                created_at=at,
                subject=subject,
                current_actor="mcp-server-client",
                delegation_chain=["mcp-server-client"],
                depth=1,
                audience=calendar,
                method="GET",
                path="/api/calendar/events",
                outcome="allowed",
                count=2 + day,
            )
        if day % 3 == 0:
            DelegationEvent.objects.create(
                created_at=at,
                subject="auth0|alice",
                current_actor="rogue-agent",
                delegation_chain=["rogue-agent"],
                depth=1,
                audience=calendar,
                method="GET",
                path="/api/calendar/events",
                outcome="denied",
                reason="actor_not_allowed",
            )
    DelegationEvent.objects.create(
        created_at=now - timedelta(hours=3),
        subject="auth0|carol",
        current_actor="agent",
        delegation_chain=["agent", "mcp-server-client"],
        depth=2,
        audience=calendar,
        method="GET",
        path="/api/calendar/events",
        outcome="allowed",
        count=4,
    )


def test_the_delegation_overview_draws_the_demos_own_rows_in_chromium(
    live_server, demo_run: DemoRun
):
    """The rows ``scripts/demo.py`` wrote (exchanges with a miss then a hit, calls acted by the
    MCP servers, the rogue client refused), loaded here, drawn in Chromium, and every number
    on the page checked against them. This is the README's screenshot."""
    assert demo_run.result.returncode == 0, demo_run.result.stdout[-3000:]
    call_command("loaddata", str(demo_run.audit_rows), verbosity=0)
    rows = list(DelegationEvent.objects.all())
    assert len(rows) >= 9
    assert {"mcp-server-client", "calendar-mcp-server", "rogue-agent"} <= {
        r.current_actor for r in rows
    }
    expected = expected_from_rows(rows)  # before Playwright's event loop, where the ORM may not run
    User.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "delegation-overview.png"

    with chromium_page() as page:
        log_in(page, live_server.url, CHANGELIST)
        page.click("a.auth0-obo-overview-link")
        page.wait_for_url(f"**{OVERVIEW}**")
        drawn = shown(page)
        rogue = page.locator('svg.auth0-obo-graph g.edge[data-actor="rogue-agent"]')
        rogue_state = rogue.get_attribute("data-state")
        box = page.locator("svg.auth0-obo-graph").bounding_box()
        page.screenshot(path=str(shot), full_page=True)

    assert drawn.edges == expected.edges
    assert drawn.actors == expected.actors
    assert drawn.totals == expected.totals
    assert drawn.days == expected.days
    assert drawn.cache_days == expected.cache_days
    assert drawn.paths == expected.paths  # the demo's chains are one actor long: none drawn
    assert drawn.totals["denied"] >= 1
    assert drawn.totals["cache-hits"] >= 1
    assert drawn.totals["cache-misses"] >= 1
    assert rogue_state == "denied"
    assert box is not None
    assert box["width"] > 600  # drawn, not collapsed
    assert shot.stat().st_size > 1000
    print(f"screenshot: {shot}")


def test_the_delegation_overview_draws_who_acts_for_whom_in_chromium(live_server):
    """What the demo's rows lack: a nested chain drawn as a path, a week of days, aggregated
    rows (``count`` > 1), several users per actor, and the list's filters on the page."""
    User.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    seed_demo_week()
    expected = expected_from_rows(DelegationEvent.objects.all())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "delegation-overview-week.png"

    with chromium_page() as page:
        log_in(page, live_server.url, CHANGELIST)
        page.click("a.auth0-obo-overview-link")
        page.wait_for_url(f"**{OVERVIEW}**")

        drawn = shown(page)
        assert drawn.edges == expected.edges
        assert drawn.actors == expected.actors
        assert drawn.paths == expected.paths
        assert drawn.days == expected.days
        assert drawn.cache_days == expected.cache_days
        assert drawn.totals == expected.totals
        assert sum(1 for a, _ in drawn.days.values() if a) == 7
        rogue = page.locator('svg.auth0-obo-graph g.edge[data-actor="rogue-agent"]')
        assert rogue.get_attribute("data-state") == "denied"
        assert "✗ 3" in rogue.text_content()
        path = page.locator("svg.auth0-obo-paths g.path")
        assert path.count() == 1
        assert path.get_attribute("data-chain") == "mcp-server-client → agent"
        assert "✓ 4" in path.text_content()
        actors = page.locator("tr.auth0-obo-actor").all_inner_texts()
        assert any(row.startswith("rogue-agent") and "actor_not_allowed" in row for row in actors)
        page.screenshot(path=str(shot), full_page=True)

        page.locator("#changelist-filter a", has_text="denied").first.click()
        page.wait_for_url("**outcome__exact=denied**")
        denied = page.locator("svg.auth0-obo-graph g.edge").evaluate_all(
            "els => els.map(e => e.dataset.actor)"
        )
        assert denied == ["rogue-agent"]

    assert shot.stat().st_size > 1000
    print(f"screenshot: {shot}")

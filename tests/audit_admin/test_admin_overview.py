"""The delegation overview page: its numbers against the rows, permissions, filters, escaping.

Expected values are computed with plain Python over the rows each test creates (aggregated rows
with ``count > 1`` included), then compared with what the page carries in its markup (the SVG's
``data-*`` attributes and the per-actor table), read back with an HTML parser.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, time, timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.utils import timezone

from django_auth0_obo.admin.overview import Period, build_overview
from django_auth0_obo.models import DelegationEvent

pytestmark = [pytest.mark.django_db, pytest.mark.urls("testproject.urls")]

CHANGELIST = "/admin/django_auth0_obo/delegationevent/"
OVERVIEW = f"{CHANGELIST}overview/"
CAL = "https://calendar-api.example.com"
MCP = "https://mcp.example.com"
FILES = "https://files-api.example.com"


class Marked(HTMLParser):
    """Collects the attributes of every element carrying a ``class`` (values unescaped)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if "class" in found:
            self.elements.append({"tag": tag, **found})

    def having(self, css_class: str) -> list[dict[str, str]]:
        return [e for e in self.elements if css_class in e["class"].split()]


def parse(content: bytes) -> Marked:
    parser = Marked()
    parser.feed(content.decode())
    return parser


def event(days_ago: float = 0, **fields) -> DelegationEvent:
    chain = fields.pop("chain", ["mcp-server-client"])
    defaults = {
        "created_at": timezone.now() - timedelta(days=days_ago),
        "subject": "auth0|alice",
        "current_actor": chain[0] if chain else "",
        "delegation_chain": chain,
        "depth": len(chain),
        "audience": CAL,
        "method": "GET",
        "path": "/api/calendar/events",
        "outcome": "allowed",
    }
    return DelegationEvent.objects.create(**{**defaults, **fields})


def seed() -> list[DelegationEvent]:
    """Allowed and denied, aggregated rows, exchanges (hits and misses), chains, old rows."""
    return [
        event(subject="auth0|alice"),
        event(subject="auth0|alice", count=5, last_seen_at=timezone.now()),
        event(subject="auth0|bob", days_ago=2, count=3),
        event(subject="auth0|bob", outcome="denied", reason="insufficient_scope", days_ago=1),
        event(subject="auth0|carol", chain=["rogue"], outcome="denied", reason="actor_not_allowed"),
        event(
            subject="auth0|dave",
            chain=["rogue"],
            outcome="denied",
            reason="actor_not_allowed",
            count=4,
            days_ago=3,
        ),
        event(
            subject="auth0|carol", chain=["rogue"], outcome="denied", reason="insufficient_scope"
        ),
        event(subject="auth0|carol", chain=["agent", "mcp-server-client"], count=2),
        event(
            subject="auth0|erin",
            chain=["agent", "mcp-server-client"],
            outcome="denied",
            reason="delegation_too_deep",
            days_ago=5,
        ),
        event(
            kind="exchange",
            audience=MCP,
            target_audience=FILES,
            cache_hit=False,
            subject="auth0|alice",
            days_ago=1,
        ),
        event(
            kind="exchange",
            audience=MCP,
            target_audience=FILES,
            cache_hit=True,
            count=7,
            subject="auth0|alice",
            days_ago=1,
        ),
        event(
            kind="exchange",
            audience=MCP,
            target_audience=FILES,
            outcome="denied",
            reason="access_denied",
            subject="auth0|bob",
        ),
        event(subject="", chain=[], outcome="denied", reason="insufficient_scope"),
        # Outside a 30-day period: must not count anywhere.
        event(subject="auth0|old", count=100, days_ago=45),
        event(subject="auth0|old", chain=["rogue"], outcome="denied", days_ago=45),
    ]


def in_period(rows: list[DelegationEvent], period: Period) -> list[DelegationEvent]:
    return [r for r in rows if period.start <= r.created_at < period.end]


def api_of(row: DelegationEvent) -> str:
    return row.target_audience or row.audience


def expected_edges(rows: list[DelegationEvent]) -> dict[tuple[str, str], tuple[int, int]]:
    edges: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        actor = r.current_actor or "(no actor: the user's own app)"
        edges[actor, api_of(r)][0 if r.outcome == "allowed" else 1] += r.count
    return {k: (v[0], v[1]) for k, v in edges.items()}


def page_edges(page: Marked) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (e["data-actor"], e["data-api"]): (int(e["data-allowed"]), int(e["data-denied"]))
        for e in page.having("edge")
    }


@pytest.fixture
def staff_viewer(db) -> Client:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_delegationevent"))
    client = Client()
    client.force_login(user)
    return client


def test_the_graph_edges_carry_the_summed_counts_of_the_rows_in_the_period(staff_viewer):
    rows = seed()
    response = staff_viewer.get(OVERVIEW)
    assert response.status_code == 200
    page = parse(response.content)
    expected = expected_edges(in_period(rows, Period.ending_today(30)))
    assert page_edges(page) == expected
    assert expected["mcp-server-client", CAL] == (1 + 5 + 3, 1)
    assert expected["mcp-server-client", FILES] == (1 + 7, 1)  # exchanges count toward the target
    denied_edges = {(e["data-actor"], e["data-api"]) for e in page.having("edge")}
    states = {(e["data-actor"], e["data-api"]): e["data-state"] for e in page.having("edge")}
    assert denied_edges == set(expected)
    assert states["rogue", CAL] == "denied"
    assert states["mcp-server-client", FILES] == "denied"


def test_allowed_only_edges_are_drawn_solid_and_denied_ones_red_and_dashed(staff_viewer):
    event(chain=["good"], audience=CAL)
    event(chain=["bad"], audience=CAL, outcome="denied", reason="actor_not_allowed")
    content = staff_viewer.get(OVERVIEW).content.decode()
    good = content[content.index('data-actor="good"') :]
    good = good[: good.index("</g>")]
    bad = content[content.index('data-actor="bad"') :]
    bad = bad[: bad.index("</g>")]
    assert "stroke-dasharray" not in good
    assert "#2e7d32" in good
    assert "stroke-dasharray" in bad
    assert "#c62828" in bad


def test_nested_chains_are_drawn_as_paths_from_the_user_to_the_api(staff_viewer):
    rows = seed()
    page = parse(staff_viewer.get(OVERVIEW).content)
    paths = page.having("path")
    nested = [r for r in in_period(rows, Period.ending_today(30)) if r.depth >= 2]
    assert len(paths) == 1
    (path,) = paths
    assert path["data-chain"] == "mcp-server-client → agent"
    assert path["data-api"] == CAL
    assert int(path["data-users"]) == len({r.subject for r in nested})
    assert int(path["data-allowed"]) == sum(r.count for r in nested if r.outcome == "allowed")
    assert int(path["data-denied"]) == sum(r.count for r in nested if r.outcome == "denied")
    labels = [e["data-label"] for e in page.elements if e.get("data-label")]
    assert labels[-4:] == ["2 users", "mcp-server-client", "agent", CAL]


def test_the_per_actor_table_counts_users_busiest_users_last_seen_and_reasons(db):
    rows = seed()
    period = Period.ending_today(30)
    overview = build_overview(DelegationEvent.objects.all(), period)
    current = in_period(rows, period)
    actors = {a.actor: a for a in overview.actors}
    for name in ("mcp-server-client", "rogue", "agent", ""):
        mine = [r for r in current if r.current_actor == name]
        summary = actors[name]
        assert summary.allowed == sum(r.count for r in mine if r.outcome == "allowed")
        assert summary.denied == sum(r.count for r in mine if r.outcome == "denied")
        assert summary.users == len({r.subject for r in mine})
        assert summary.last_seen == max(r.last_seen_at or r.created_at for r in mine)
        per_user = Counter()
        for r in mine:
            per_user[r.subject] += r.count
        ranked = sorted(per_user.items(), key=lambda item: (-item[1], item[0]))
        assert summary.busiest_users == ranked[:3]
        reasons = Counter()
        for r in mine:
            if r.outcome == "denied":
                reasons[r.reason or "(no reason)"] += r.count
        assert summary.top_reasons == sorted(reasons.items(), key=lambda i: (-i[1], i[0]))[:3]
    assert actors["rogue"].top_reasons == [("actor_not_allowed", 5), ("insufficient_scope", 1)]
    assert actors["mcp-server-client"].busiest_users[0] == ("auth0|alice", 1 + 5 + 1 + 7)


def test_the_day_chart_sums_each_local_day_and_the_exchange_cache(staff_viewer):
    rows = seed()
    period = Period.ending_today(30)
    page = parse(staff_viewer.get(OVERVIEW).content)
    events = {e["data-day"]: e for e in page.having("events")}
    cache = {e["data-day"]: e for e in page.having("cache")}
    assert len(events) == len(cache) == 30
    for day in period.dates:
        mine = [r for r in rows if timezone.localdate(r.created_at) == day]
        exchanges = [r for r in mine if r.kind == "exchange"]
        shown = events[day.isoformat()]
        assert int(shown["data-allowed"]) == sum(r.count for r in mine if r.outcome == "allowed")
        assert int(shown["data-denied"]) == sum(r.count for r in mine if r.outcome == "denied")
        hits = cache[day.isoformat()]
        assert int(hits["data-hits"]) == sum(r.count for r in exchanges if r.cache_hit is True)
        assert int(hits["data-misses"]) == sum(r.count for r in exchanges if r.cache_hit is False)
    assert sum(int(e["data-hits"]) for e in cache.values()) == 7


def test_the_totals_match_the_rows(staff_viewer):
    rows = in_period(seed(), Period.ending_today(30))
    content = staff_viewer.get(OVERVIEW).content.decode()
    allowed = sum(r.count for r in rows if r.outcome == "allowed")
    denied = sum(r.count for r in rows if r.outcome == "denied")
    assert f'data-total="allowed">{allowed}<' in content
    assert f'data-total="denied">{denied}<' in content


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"outcome__exact": "denied"}, lambda r: r.outcome == "denied"),
        ({"kind__exact": "exchange"}, lambda r: r.kind == "exchange"),
        ({"current_actor": "rogue"}, lambda r: r.current_actor == "rogue"),
        ({"audience": MCP}, lambda r: r.audience == MCP),
        ({"q": "carol"}, lambda r: "carol" in r.subject),
        ({"period": "7"}, lambda r: r.created_at >= Period.ending_today(7).start),
        (
            {"period": "1", "outcome__exact": "allowed"},
            lambda r: r.created_at >= Period.ending_today(1).start and r.outcome == "allowed",
        ),
    ],
)
def test_the_period_and_the_lists_filters_apply_to_the_whole_page(staff_viewer, params, keep):
    rows = seed()
    days = int(params.get("period", 30))
    kept = [r for r in in_period(rows, Period.ending_today(days)) if keep(r)]
    page = parse(staff_viewer.get(OVERVIEW, params).content)
    assert page_edges(page) == expected_edges(kept)
    assert sum(int(e["data-denied"]) for e in page.having("events")) == sum(
        r.count for r in kept if r.outcome == "denied"
    )
    assert {e["data-actor"] for e in page.having("auth0-obo-actor")} == {
        r.current_actor for r in kept
    }


def test_filter_links_on_the_page_keep_the_period(staff_viewer):
    seed()
    content = staff_viewer.get(OVERVIEW, {"period": "7"}).content.decode()
    assert "?outcome__exact=denied&amp;period=7" in content


def test_an_unknown_filter_redirects_with_the_error_flag_like_the_list(staff_viewer):
    response = staff_viewer.get(OVERVIEW, {"no_such_field": "x"})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_a_bad_period_falls_back_to_30_days(staff_viewer):
    seed()
    page = parse(staff_viewer.get(OVERVIEW, {"period": "1000000"}).content)
    assert len(page.having("events")) == 30


def test_the_changelist_links_to_the_overview_with_its_filters(staff_viewer):
    content = staff_viewer.get(CHANGELIST, {"outcome__exact": "denied"}).content.decode()
    assert f'href="{OVERVIEW}?outcome__exact=denied"' in content


def test_staff_without_the_view_permission_get_403_and_with_it_200(db, staff_viewer):
    nobody = User.objects.create_user("nobody", password="pw", is_staff=True)
    client = Client()
    client.force_login(nobody)
    assert client.get(OVERVIEW).status_code == 403
    assert staff_viewer.get(OVERVIEW).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(OVERVIEW)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


HOSTILE = [
    "<script>alert(1)</script>",
    "\"><svg onload=alert(1)>'",
    "a & b &amp; c",
    "nul\x00byte\x1b[31m",
    "x" * 5000,
    "\u202eevil",
]


@pytest.mark.parametrize("label", HOSTILE)
def test_every_label_is_escaped(staff_viewer, label):
    if connection.vendor == "postgresql":
        label = label.replace("\x00", "\x01")  # PostgreSQL text cannot hold NUL at all,
        label = label[:64]  # nor more than a column's length (the audit writer cuts values)
    event(subject=label, chain=[label, label], audience=label, reason=label, outcome="denied")
    event(subject=label, chain=[label], audience=label, outcome="allowed")
    content = staff_viewer.get(OVERVIEW).content.decode()
    assert "<script>alert" not in content
    assert "<svg onload" not in content
    # What this page draws (Django's own filter sidebar, shared with the list, aside):
    drawn = content[: content.index('<nav id="changelist-filter"')]
    assert "\x00" not in drawn
    assert "\u202e" not in drawn
    assert "x" * 301 not in drawn  # long values are capped everywhere
    page = parse(content.encode())
    (edge,) = [e for e in page.having("edge") if e["data-actor"] != "(no actor)"]
    cleaned = label
    for control in ("\x00", "\x01", "\x1b", "\u202e"):
        cleaned = cleaned.replace(control, "\ufffd")
    assert edge["data-actor"] == cleaned[:299] + ("…" if len(label) > 300 else "")
    (path,) = page.having("path")
    assert path["data-api"] == edge["data-api"]


def test_the_page_takes_a_fixed_number_of_queries(staff_viewer, django_assert_max_num_queries):
    seed()
    staff_viewer.get(OVERVIEW)
    with django_assert_max_num_queries(14):
        assert staff_viewer.get(OVERVIEW).status_code == 200


def test_the_overview_indexes_accept_the_longest_values_the_audit_writer_keeps(db):
    """Long, incompressible multi-byte claims (4 bytes a character) in every indexed text column
    an attacker may size still insert: the overview's indexes stay under btree's entry limit."""
    from random import Random

    from django_auth0_obo import audit

    rng = Random(13)

    def huge() -> str:
        return "".join(chr(0x20000 + rng.randrange(0x5000)) for _ in range(300))

    audit.write_event(
        {
            "subject": huge(),
            "current_actor": huge(),
            "delegation_chain": [],
            "audience": huge(),
            "reason": huge(),
            "outcome": "denied",
        }
    )
    audit.flush()
    row = DelegationEvent.objects.get()
    assert len(row.subject) == len(row.current_actor) == len(row.audience) == 255


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Los_Angeles", "Asia/Kolkata"])
def test_days_are_local_days_on_either_side_of_local_midnight(db, settings, zone):
    """Rows a minute either side of each local midnight (DST changes included) land on their
    own local day, on every backend's day query (joined ranges or the ``CASE`` bucket)."""
    settings.TIME_ZONE = zone
    period = Period.ending_today(90)
    rows = []
    for day in period.dates[1:]:
        midnight = timezone.make_aware(datetime.combine(day, time.min))
        rows.append(event(created_at=midnight - timedelta(minutes=1), count=2))
        rows.append(event(created_at=midnight, outcome="denied", reason="x"))
    shown = {d.day: d for d in build_overview(DelegationEvent.objects.all(), period).days}
    for day in period.dates:
        mine = [r for r in rows if timezone.localdate(r.created_at) == day]
        assert shown[day].allowed == sum(r.count for r in mine if r.outcome == "allowed")
        assert shown[day].denied == sum(r.count for r in mine if r.outcome == "denied")

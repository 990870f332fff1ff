"""The delegation overview's numbers, twice (not a test module): as Chromium shows them (read from
the drawn SVG and the actor table) and as the database says they should be, computed here without
the page's code: in Python from every row (:func:`expected_from_rows`, small tables) or from plain
ORM aggregates folded in Python (:func:`expected_from_database`, a million rows)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from django_auth0_obo.models import DelegationEvent

NO_ACTOR = "(no actor: the user's own app)"
PERIOD_DAYS = 30

Pair = tuple[int, int]


@dataclass
class Numbers:
    """Everything countable on the page. ``edges`` map ``(actor, api)`` to (allowed, denied);
    ``actors`` an actor, and ``paths`` a ``(chain, api)``, to (users, allowed, denied)."""

    edges: dict[tuple[str, str], Pair] = field(default_factory=dict)
    actors: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    paths: dict[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)
    days: dict[str, Pair] = field(default_factory=dict)
    cache_days: dict[str, Pair] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


def period_start(days: int = PERIOD_DAYS) -> datetime:
    """The page's default period: whole local days, ``days`` of them ending today."""
    first = timezone.localdate() - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, time.min))


def period_dates(days: int = PERIOD_DAYS) -> list[date]:
    today = timezone.localdate()
    return [today - timedelta(days=days - 1 - i) for i in range(days)]


def _api(audience: str, target_audience: str) -> str:
    return target_audience or audience or "?"


def _chain(delegation_chain: Iterable[str]) -> str:
    """First actor first, as the page labels a path (stored newest first)."""
    return " → ".join(reversed(list(delegation_chain)))


def _with_totals(numbers: Numbers) -> Numbers:
    numbers.totals = {
        "allowed": sum(a for a, _ in numbers.days.values()),
        "denied": sum(d for _, d in numbers.days.values()),
        "cache-hits": sum(h for h, _ in numbers.cache_days.values()),
        "cache-misses": sum(m for _, m in numbers.cache_days.values()),
    }
    return numbers


def expected_from_rows(rows: Iterable[DelegationEvent]) -> Numbers:
    """The page's numbers for the default period, from every row, one at a time."""
    start = period_start()
    dates = {d.isoformat() for d in period_dates()}
    edges: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    actors: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    actor_users: dict[str, set[str]] = defaultdict(set)
    paths: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    path_users: dict[tuple[str, str], set[str]] = defaultdict(set)
    days: dict[str, list[int]] = {d: [0, 0] for d in dates}
    cache_days: dict[str, list[int]] = {d: [0, 0] for d in dates}
    for row in rows:
        if row.created_at < start:
            continue
        denied = int(row.outcome == DelegationEvent.Outcome.DENIED)
        actor = row.current_actor or NO_ACTOR
        api = _api(row.audience, row.target_audience)
        edges[(actor, api)][denied] += row.count
        actors[actor][denied] += row.count
        actor_users[actor].add(row.subject)
        if row.depth >= 2:
            key = (_chain(row.delegation_chain), api)
            paths[key][denied] += row.count
            path_users[key].add(row.subject)
        day = timezone.localdate(row.created_at).isoformat()
        days[day][denied] += row.count
        if row.kind == DelegationEvent.Kind.EXCHANGE and row.cache_hit is not None:
            cache_days[day][0 if row.cache_hit else 1] += row.count
    return _with_totals(
        Numbers(
            edges={k: (a, d) for k, (a, d) in edges.items()},
            actors={k: (len(actor_users[k]), a, d) for k, (a, d) in actors.items()},
            paths={k: (len(path_users[k]), a, d) for k, (a, d) in paths.items()},
            days={k: (a, d) for k, (a, d) in days.items()},
            cache_days={k: (h, m) for k, (h, m) in cache_days.items()},
        )
    )


def expected_from_database() -> Numbers:
    """The same numbers from a few plain aggregates over the period's rows (a million of them):
    grouped by the stored columns and folded in Python, distinct users counted by the database,
    and each day summed over its own ``created_at`` range."""
    rows = DelegationEvent.objects.filter(created_at__gte=period_start()).order_by()
    edges: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    actors: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    grouped = rows.values("current_actor", "audience", "target_audience", "outcome").annotate(
        events=Sum("count")
    )
    for g in grouped:
        denied = int(g["outcome"] == DelegationEvent.Outcome.DENIED)
        actor = g["current_actor"] or NO_ACTOR
        edges[(actor, _api(g["audience"], g["target_audience"]))][denied] += g["events"]
        actors[actor][denied] += g["events"]
    users = {
        (g["current_actor"] or NO_ACTOR): g["users"]
        for g in rows.values("current_actor").annotate(users=Count("subject", distinct=True))
    }
    paths: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    path_users: dict[tuple[str, str], set[str]] = defaultdict(set)
    nested = rows.filter(depth__gte=2)
    for g in nested.values(
        "delegation_chain", "audience", "target_audience", "subject", "outcome"
    ).annotate(events=Sum("count")):
        key = (_chain(g["delegation_chain"]), _api(g["audience"], g["target_audience"]))
        paths[key][int(g["outcome"] == DelegationEvent.Outcome.DENIED)] += g["events"]
        path_users[key].add(g["subject"])
    return _with_totals(
        Numbers(
            edges={k: (a, d) for k, (a, d) in edges.items()},
            actors={k: (users[k], a, d) for k, (a, d) in actors.items()},
            paths={k: (len(path_users[k]), a, d) for k, (a, d) in paths.items()},
            **_days_from_database(rows),
        )
    )


def _days_from_database(rows: Any) -> dict[str, dict[str, Pair]]:
    """Per local day: the four sums over that day's ``created_at`` range, one query a day."""
    dates = period_dates()
    midnights = [*dates, dates[-1] + timedelta(days=1)]
    bounds = [timezone.make_aware(datetime.combine(d, time.min)) for d in midnights]
    exchange = Q(kind=DelegationEvent.Kind.EXCHANGE)
    sums = {
        "allowed": Sum("count", filter=Q(outcome=DelegationEvent.Outcome.ALLOWED), default=0),
        "denied": Sum("count", filter=Q(outcome=DelegationEvent.Outcome.DENIED), default=0),
        "hits": Sum("count", filter=exchange & Q(cache_hit=True), default=0),
        "misses": Sum("count", filter=exchange & Q(cache_hit=False), default=0),
    }
    days, cache_days = {}, {}
    for i, day in enumerate(dates):
        got = rows.filter(created_at__gte=bounds[i], created_at__lt=bounds[i + 1]).aggregate(**sums)
        days[day.isoformat()] = (got["allowed"], got["denied"])
        cache_days[day.isoformat()] = (got["hits"], got["misses"])
    return {"days": days, "cache_days": cache_days}


# What Chromium shows.

READ_EDGES = """els => els.map(e => [e.dataset.actor, e.dataset.api,
    Number(e.dataset.allowed), Number(e.dataset.denied)])"""
READ_PATHS = """els => els.map(e => [e.dataset.chain, e.dataset.api, Number(e.dataset.users),
    Number(e.dataset.allowed), Number(e.dataset.denied)])"""
READ_ACTORS = """els => els.map(e => [e.dataset.actor,
    Number(e.querySelector('[data-users]').dataset.users),
    Number(e.querySelector('[data-allowed]').dataset.allowed),
    Number(e.querySelector('[data-denied]').dataset.denied)])"""
READ_DAYS = """(els, names) => els.map(e => [e.dataset.day,
    Number(e.dataset[names[0]]), Number(e.dataset[names[1]])])"""
READ_TOTALS = (
    """els => els.map(e => [e.dataset.total, Number(e.textContent.replace(/\\D/g, ''))])"""
)


def shown(page: Any) -> Numbers:
    """The numbers as the browser laid them out (``page`` is a Playwright page on the overview)."""
    edges = page.locator("svg.auth0-obo-graph g.edge").evaluate_all(READ_EDGES)
    paths = page.locator("svg.auth0-obo-paths g.path").evaluate_all(READ_PATHS)
    actors = page.locator("tr.auth0-obo-actor").evaluate_all(READ_ACTORS)
    days = page.locator("svg.auth0-obo-days g.day.events").evaluate_all(
        READ_DAYS, ["allowed", "denied"]
    )
    cache_days = page.locator("svg.auth0-obo-days g.day.cache").evaluate_all(
        READ_DAYS, ["hits", "misses"]
    )
    totals = page.locator(".auth0-obo-totals [data-total]").evaluate_all(READ_TOTALS)
    return Numbers(
        edges={(a, api): (ok, no) for a, api, ok, no in edges},
        actors={a: (users, ok, no) for a, users, ok, no in actors},
        paths={(chain, api): (users, ok, no) for chain, api, users, ok, no in paths},
        days={d: (a, b) for d, a, b in days},
        cache_days={d: (a, b) for d, a, b in cache_days},
        totals=dict(totals),
    )


def assert_busiest_shown(shown: dict[Any, Any], expected: dict[Any, Any], cap: int) -> None:
    """``shown`` is ``expected`` cut to its ``cap`` busiest entries, each with the right numbers
    (ties at the cut may fall either way, so the cut is checked by its totals)."""
    assert len(shown) == min(cap, len(expected))
    for key, value in shown.items():
        assert expected.get(key) == value, key

    def busy(value: tuple[int, ...]) -> int:
        return value[-2] + value[-1]  # allowed + denied, the last two of every tuple

    hidden = [busy(v) for k, v in expected.items() if k not in shown]
    if hidden:
        assert min(busy(v) for v in shown.values()) >= max(hidden)

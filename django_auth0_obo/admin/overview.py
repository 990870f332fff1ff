"""The delegation overview: who acts for whom over a period, at a glance, in the admin.

``/admin/django_auth0_obo/delegationevent/overview/`` answers what a list of rows cannot: which
actors act for our users, on which APIs, how often they are refused, and how that moves day by
day. The page reuses the changelist's own filtering (``ChangeList.queryset``: list filters,
search, date hierarchy), so it shows exactly the rows the list would, narrowed to the chosen
period. Everything on it comes from six ``GROUP BY`` queries whose size does not depend on the
table's (edges, actors and chains are capped), summing ``count`` because one audit row may stand
for several aggregated events. The pictures are drawn by :mod:`django_auth0_obo.overview_svg`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import Case, F, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, NullIf
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from django_auth0_obo import overview_svg
from django_auth0_obo.models import DelegationEvent

#: Query parameter choosing the period; its values are days back from today (local time).
PERIOD_VAR = "period"
PERIODS = (1, 7, 30, 90)
DEFAULT_PERIOD = 30
#: Caps that keep the page's size independent of the table's.
MAX_EDGES = 40
MAX_ACTORS = 25
MAX_PATHS = 15
TOP_USERS = 3
TOP_REASONS = 3

ALLOWED = DelegationEvent.Outcome.ALLOWED
DENIED = DelegationEvent.Outcome.DENIED
EXCHANGE = DelegationEvent.Kind.EXCHANGE

#: The API an event concerns: where an exchange's token is for, else the audience called.
API = Coalesce(NullIf(F("target_audience"), Value("")), F("audience"))


def _counts() -> dict[str, Any]:
    """Allowed, denied and total events (``count`` summed: a row may stand for several)."""
    return {
        "allowed": Coalesce(Sum("count", filter=Q(outcome=ALLOWED)), 0),
        "denied": Coalesce(Sum("count", filter=Q(outcome=DENIED)), 0),
        "total": Sum("count"),
    }


@dataclass(frozen=True)
class Period:
    """Whole local days ending today: ``days`` of them, from ``start`` up to ``end``."""

    days: int
    start: datetime
    end: datetime

    @classmethod
    def ending_today(cls, days: int) -> Period:
        today = timezone.localdate()
        first = today - timedelta(days=days - 1)
        return cls(days, _midnight(first), _midnight(today + timedelta(days=1)))

    @property
    def dates(self) -> list[date]:
        first = timezone.localdate(self.start)
        return [first + timedelta(days=i) for i in range(self.days)]

    def day_bucket(self) -> Case | Value:
        """The index of an event's local day, from comparisons against the day boundaries.

        A binary search written as nested ``CASE`` (about log2(days) comparisons a row):
        portable, with no per-row timezone conversion (which SQLite would call into Python
        for), and right across DST changes since the boundaries are local midnights.
        """
        boundaries = [_midnight(d + timedelta(days=1)) for d in self.dates]

        def bucket(low: int, high: int) -> Case | Value:
            if high - low == 1:
                return Value(low)
            mid = (low + high) // 2
            return Case(
                When(created_at__lt=boundaries[mid - 1], then=bucket(low, mid)),
                default=bucket(mid, high),
            )

        return bucket(0, len(boundaries))


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass
class ActorSummary:
    actor: str
    allowed: int
    denied: int
    users: int
    last_seen: datetime | None
    busiest_users: list[tuple[str, int]] = field(default_factory=list)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Overview:
    """Everything the page shows, computed from a filtered queryset and a period."""

    period: Period
    edges: list[overview_svg.Edge]
    more_edges: bool
    actors: list[ActorSummary]
    more_actors: bool
    paths: list[overview_svg.ChainPath]
    more_paths: bool
    days: list[overview_svg.Day]

    @property
    def allowed(self) -> int:
        return sum(d.allowed for d in self.days)

    @property
    def denied(self) -> int:
        return sum(d.denied for d in self.days)

    @property
    def cache_hits(self) -> int:
        return sum(d.cache_hits for d in self.days)

    @property
    def cache_misses(self) -> int:
        return sum(d.cache_misses for d in self.days)


def build_overview(queryset: QuerySet[DelegationEvent], period: Period) -> Overview:
    """Aggregate ``queryset`` (already filtered as the changelist filters it) over ``period``.

    Four passes over the period's rows: edges, actors and refusal reasons from one grouping
    (:func:`_by_actor_api`), users per actor, chains, days.
    """
    rows = queryset.order_by().filter(created_at__gte=period.start, created_at__lt=period.end)
    edges, all_actors = _by_actor_api(rows)
    edges_shown, more_edges = _capped(edges, MAX_EDGES)
    actors, more_actors = _capped(all_actors, MAX_ACTORS)
    _add_users(rows, actors)
    paths, more_paths = _capped(_paths(rows), MAX_PATHS)
    return Overview(
        period, edges_shown, more_edges, actors, more_actors, paths, more_paths, _days(rows, period)
    )


def _capped(items: Sequence[Any], limit: int) -> tuple[list[Any], bool]:
    return list(items[:limit]), len(items) > limit


def _by_actor_api(
    rows: QuerySet[DelegationEvent],
) -> tuple[list[overview_svg.Edge], list[ActorSummary]]:
    """Edges, actors (busiest first) and their refusal reasons, from one ``GROUP BY``.

    Grouped by ``(actor, API, outcome, reason)``: few groups (actors, APIs and reason codes are
    few), so the three summaries are folded here in Python from a single pass over the rows.
    """
    grouped = (
        rows.annotate(api=API)
        .values("current_actor", "api", "outcome", "reason")
        .annotate(events=Sum("count"), last_seen=Max(Coalesce("last_seen_at", "created_at")))
        .order_by()
    )
    edges: dict[tuple[str, str], list[int]] = {}
    actors: dict[str, ActorSummary] = {}
    reasons: dict[str, dict[str, int]] = {}
    for g in grouped:
        actor, denied, events = g["current_actor"], g["outcome"] == DENIED, int(g["events"])
        edges.setdefault((actor, g["api"] or "?"), [0, 0])[denied] += events
        summary = actors.setdefault(actor, ActorSummary(actor, 0, 0, 0, None))
        if denied:
            summary.denied += events
            why = reasons.setdefault(actor, {})
            why[g["reason"] or "(no reason)"] = why.get(g["reason"] or "(no reason)", 0) + events
        else:
            summary.allowed += events
        if summary.last_seen is None or g["last_seen"] > summary.last_seen:
            summary.last_seen = g["last_seen"]
    for actor, why in reasons.items():
        ranked = sorted(why.items(), key=lambda item: (-item[1], item[0]))
        actors[actor].top_reasons = ranked[:TOP_REASONS]
    edge_list = sorted(
        (overview_svg.Edge(_actor(a), api, ok, no) for (a, api), (ok, no) in edges.items()),
        key=lambda e: (-(e.allowed + e.denied), e.actor, e.api),
    )
    actor_list = sorted(actors.values(), key=lambda a: (-(a.allowed + a.denied), a.actor))
    return edge_list, actor_list


def _add_users(rows: QuerySet[DelegationEvent], actors: list[ActorSummary]) -> None:
    """How many users each shown actor acted for, and its busiest ones, in one pass.

    Windows over the ``(actor, user)`` groups: ``COUNT(*) OVER`` the actor's groups is its
    number of distinct users (no separate ``COUNT(DISTINCT …)``), ``ROW_NUMBER()`` ranks them so
    only ``TOP_USERS`` rows per actor leave the database, however many users an actor served.
    Written around the ORM's grouped query because Django would put a window in the
    ``GROUP BY`` of an aggregated ``values()`` query.
    """
    by_actor = {a.actor: a for a in actors}
    if not by_actor:
        return
    grouped = (
        rows.filter(current_actor__in=list(by_actor))
        .values("current_actor", "subject")
        .annotate(events=Sum("count"))
        .order_by()
    )
    sql, params = grouped.query.sql_with_params()
    ranked = (
        "SELECT current_actor, subject, events, users FROM ("  # noqa: S608 - the ORM's SQL, parameters
        " SELECT current_actor, subject, events,"
        "  ROW_NUMBER() OVER ("
        "   PARTITION BY current_actor ORDER BY events DESC, subject ASC) AS position,"
        "  COUNT(*) OVER (PARTITION BY current_actor) AS users"
        f" FROM ({sql}) grouped) ranked"
        " WHERE position <= %s ORDER BY current_actor, position"
    )
    with connections[rows.db].cursor() as cursor:
        cursor.execute(ranked, [*params, TOP_USERS])
        for actor, subject, events, users in cursor.fetchall():
            summary = by_actor[actor]
            summary.users = int(users)
            summary.busiest_users.append((subject, int(events)))


def _paths(rows: QuerySet[DelegationEvent]) -> list[overview_svg.ChainPath]:
    """The busiest chains of two or more actors, with how many users each served.

    Grouped twice: by ``(chain, API, user)`` in the ORM, then by ``(chain, API)`` around it, so
    the number of users is a plain ``COUNT(*)`` rather than a ``COUNT(DISTINCT …)``.
    """
    per_user = (
        rows.filter(depth__gte=2)
        .annotate(api=API)
        .values("delegation_chain", "api", "subject")
        .annotate(**_counts())
        .order_by()
    )
    sql, params = per_user.query.sql_with_params()
    grouped = (
        "SELECT delegation_chain, api, SUM(allowed), SUM(denied), COUNT(*), MIN(subject)"  # noqa: S608 - the ORM's SQL, parameters
        f" FROM ({sql}) per_user GROUP BY delegation_chain, api"
        " ORDER BY SUM(total) DESC, api, MIN(subject), delegation_chain LIMIT %s"
    )
    paths = []
    with connections[rows.db].cursor() as cursor:
        cursor.execute(grouped, [*params, MAX_PATHS + 1])
        for chain, api, allowed, denied, users, example in cursor.fetchall():
            actors = _chain_actors(chain)
            paths.append(
                overview_svg.ChainPath(
                    actors, api or "?", int(users), example, int(allowed), int(denied)
                )
            )
    return paths


def _chain_actors(chain: Any) -> tuple[str, ...]:
    """First actor first, from a stored chain (newest first; JSON text on some databases)."""
    if isinstance(chain, str):
        try:
            chain = json.loads(chain)
        except ValueError:
            chain = []
    return tuple(str(a) for a in reversed(chain)) if isinstance(chain, list) else ()


def _days(rows: QuerySet[DelegationEvent], period: Period) -> list[overview_svg.Day]:
    exchanges = Q(kind=EXCHANGE)
    grouped = (
        rows.annotate(day=period.day_bucket())
        .values("day")
        .annotate(
            **_counts(),
            hits=Coalesce(Sum("count", filter=exchanges & Q(cache_hit=True)), 0),
            misses=Coalesce(Sum("count", filter=exchanges & Q(cache_hit=False)), 0),
        )
        .order_by("day")
    )
    by_index: dict[int, Mapping[str, Any]] = {g["day"]: g for g in grouped}
    days = []
    for i, day in enumerate(period.dates):
        g = by_index.get(i, {})
        days.append(
            overview_svg.Day(
                day,
                int(g.get("allowed", 0)),
                int(g.get("denied", 0)),
                int(g.get("hits", 0)),
                int(g.get("misses", 0)),
            )
        )
    return days


def _actor(value: str) -> str:
    return value or "(no actor: the user's own app)"


# The admin view.


if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[DelegationEvent]
else:
    _ModelAdmin = admin.ModelAdmin


class OverviewAdminMixin(_ModelAdmin):
    """Adds ``overview/`` to a DelegationEvent ModelAdmin; same permission as viewing events."""

    overview_template = "admin/django_auth0_obo/delegationevent/overview.html"

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(
                "overview/",
                self.admin_site.admin_view(self.overview_view),
                name="{}_{}_overview".format(*info),
            )
        ]
        urls: list[URLPattern] = own + super().get_urls()
        return urls

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        period = Period.ending_today(_chosen_period(request))
        try:
            changelist = self.overview_changelist(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        data = build_overview(changelist.queryset, period)
        has_filters = bool(changelist.get_filters_params()) or bool(changelist.query)
        # Filter links on this page keep the chosen period.
        changelist.filter_params[PERIOD_VAR] = [str(period.days)]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "cl": changelist,
            "title": "Delegation overview",
            "overview": data,
            "graph_svg": _safe(overview_svg.draw_graph(data.edges)),
            "paths_svg": _safe(overview_svg.draw_paths(data.paths)),
            "days_svg": _safe(overview_svg.draw_days(data.days)),
            "periods": [
                (days, changelist.get_query_string({PERIOD_VAR: days}), days == period.days)
                for days in PERIODS
            ],
            "changelist_query": changelist.get_query_string(remove=[PERIOD_VAR]),
            "has_filters": has_filters,
        }
        return TemplateResponse(request, self.overview_template, context)

    def overview_changelist(self, request: HttpRequest) -> ChangeList:
        """The changelist for this request's filters and search, without the period parameter."""
        scoped = copy.copy(request)
        query = request.GET.copy()
        query.pop(PERIOD_VAR, None)
        scoped.GET = query  # type: ignore[assignment]  # a mutable copy, used only here
        changelist: ChangeList = self.get_changelist_instance(scoped)
        return changelist


def _chosen_period(request: HttpRequest) -> int:
    raw = request.GET.get(PERIOD_VAR, "")
    return int(raw) if raw.isdigit() and int(raw) in PERIODS else DEFAULT_PERIOD


def _safe(markup: str) -> SafeString:
    """Markup from :mod:`overview_svg`, which escapes every value it writes."""
    return mark_safe(markup)  # noqa: S308 - every label is escaped by overview_svg.text/attr

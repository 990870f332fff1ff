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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import Case, Count, F, Max, Min, Q, QuerySet, Sum, Value, When
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


def _counts() -> dict[str, Sum]:
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

    def day_bucket(self) -> Case:
        """The index of an event's local day, as SQL comparisons against the day boundaries.

        Portable and index-friendly (no per-row timezone conversion function, which SQLite
        would call into Python for), and right across DST changes since the boundaries are
        computed here in the current time zone.
        """
        whens = [
            When(created_at__lt=_midnight(d + timedelta(days=1)), then=i)
            for i, d in enumerate(self.dates)
        ]
        return Case(*whens, default=None)


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
    """Aggregate ``queryset`` (already filtered as the changelist filters it) over ``period``."""
    rows = queryset.order_by().filter(created_at__gte=period.start, created_at__lt=period.end)
    edges, more_edges = _capped(_edges(rows), MAX_EDGES)
    actors, more_actors = _capped(_actors(rows), MAX_ACTORS)
    _add_busiest_users(rows, actors)
    _add_top_reasons(rows, actors)
    paths, more_paths = _capped(_paths(rows), MAX_PATHS)
    return Overview(
        period, edges, more_edges, actors, more_actors, paths, more_paths, _days(rows, period)
    )


def _capped(items: Sequence[Any], limit: int) -> tuple[list[Any], bool]:
    return list(items[:limit]), len(items) > limit


def _edges(rows: QuerySet[DelegationEvent]) -> list[overview_svg.Edge]:
    grouped = (
        rows.annotate(api=API)
        .values("current_actor", "api")
        .annotate(**_counts())
        .order_by("-total", "current_actor", "api")[: MAX_EDGES + 1]
    )
    return [
        overview_svg.Edge(_actor(g["current_actor"]), g["api"] or "?", g["allowed"], g["denied"])
        for g in grouped
    ]


def _actors(rows: QuerySet[DelegationEvent]) -> list[ActorSummary]:
    grouped = (
        rows.values("current_actor")
        .annotate(
            **_counts(),
            users=Count("subject", distinct=True),
            last_seen=Max(Coalesce("last_seen_at", "created_at")),
        )
        .order_by("-total", "current_actor")[: MAX_ACTORS + 1]
    )
    return [
        ActorSummary(g["current_actor"], g["allowed"], g["denied"], g["users"], g["last_seen"])
        for g in grouped
    ]


def _add_busiest_users(rows: QuerySet[DelegationEvent], actors: list[ActorSummary]) -> None:
    """The top users of each shown actor, ranked in the database.

    A window over the grouped rows (``ROW_NUMBER() OVER (PARTITION BY actor ...)``) so only
    ``TOP_USERS`` rows per actor leave the database, however many users an actor served. Written
    around the ORM's grouped query because Django would put the window itself in the
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
        "SELECT current_actor, subject, events FROM ("  # noqa: S608 - the ORM's SQL, parameters
        " SELECT current_actor, subject, events, ROW_NUMBER() OVER ("
        "  PARTITION BY current_actor ORDER BY events DESC, subject ASC) AS position"
        f" FROM ({sql}) grouped) ranked"
        " WHERE position <= %s ORDER BY current_actor, position"
    )
    with connections[rows.db].cursor() as cursor:
        cursor.execute(ranked, [*params, TOP_USERS])
        for actor, subject, events in cursor.fetchall():
            by_actor[actor].busiest_users.append((subject, int(events)))


def _add_top_reasons(rows: QuerySet[DelegationEvent], actors: list[ActorSummary]) -> None:
    by_actor = {a.actor: a for a in actors}
    grouped = (
        rows.filter(outcome=DENIED, current_actor__in=list(by_actor))
        .values("current_actor", "reason")
        .annotate(events=Sum("count"))
        .order_by("current_actor", "-events", "reason")
    )
    for g in grouped:
        reasons = by_actor[g["current_actor"]].top_reasons
        if len(reasons) < TOP_REASONS:
            reasons.append((g["reason"] or "(no reason)", g["events"]))


def _paths(rows: QuerySet[DelegationEvent]) -> list[overview_svg.ChainPath]:
    grouped = (
        rows.filter(depth__gte=2)
        .annotate(api=API)
        .values("delegation_chain", "api")
        .annotate(**_counts(), users=Count("subject", distinct=True), example=Min("subject"))
        .order_by("-total", "api", "delegation_chain")[: MAX_PATHS + 1]
    )
    paths = []
    for g in grouped:
        chain = g["delegation_chain"] if isinstance(g["delegation_chain"], list) else []
        actors = tuple(str(a) for a in reversed(chain))  # stored newest first
        paths.append(
            overview_svg.ChainPath(
                actors, g["api"] or "?", g["users"], g["example"], g["allowed"], g["denied"]
            )
        )
    return paths


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
    by_index = {g["day"]: g for g in grouped}
    days = []
    for i, day in enumerate(period.dates):
        g = by_index.get(i, {})
        days.append(
            overview_svg.Day(
                day, g.get("allowed", 0), g.get("denied", 0), g.get("hits", 0), g.get("misses", 0)
            )
        )
    return days


def _actor(value: str) -> str:
    return value or "(no actor: the user's own app)"


# The admin view.


class OverviewAdminMixin:
    """Adds ``overview/`` to a DelegationEvent ModelAdmin; same permission as viewing events."""

    overview_template = "admin/django_auth0_obo/delegationevent/overview.html"

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name  # type: ignore[attr-defined]
        own = [
            path(
                "overview/",
                self.admin_site.admin_view(self.overview_view),  # type: ignore[attr-defined]
                name="{}_{}_overview".format(*info),
            )
        ]
        return own + super().get_urls()  # type: ignore[misc]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
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
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.opts,  # type: ignore[attr-defined]
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
        scoped.GET = request.GET.copy()
        scoped.GET.pop(PERIOD_VAR, None)
        return self.get_changelist_instance(scoped)  # type: ignore[attr-defined,no-any-return]


def _chosen_period(request: HttpRequest) -> int:
    raw = request.GET.get(PERIOD_VAR, "")
    return int(raw) if raw.isdigit() and int(raw) in PERIODS else DEFAULT_PERIOD


def _safe(markup: str) -> SafeString:
    """Markup from :mod:`overview_svg`, which escapes every value it writes."""
    return mark_safe(markup)  # noqa: S308 - every label is escaped by overview_svg.text/attr

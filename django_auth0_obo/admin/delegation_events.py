"""Admin for the delegation audit trail (DelegationEvent): read-only, fast on large tables.

Rows are never added or edited from the UI; superusers may delete selected rows with the
"purge" action. The chain reads as "who acted for whom": ``user → first actor → … → current
actor`` (the stored chain is newest first, so it is drawn reversed). Large tables stay cheap:
no full-result count, an exact page count only up to :attr:`CheapCountPaginator.exact_limit`
rows (the planner's estimate beyond, on PostgreSQL), and every filter backed by an index.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from django_auth0_obo.admin.overview import OverviewAdminMixin
from django_auth0_obo.models import DelegationEvent

ARROW = " → "

#: Columns of the CSV export: an allow-list, so a field added later is never exported by accident.
EXPORT_FIELDS = (
    "created_at",
    "kind",
    "outcome",
    "reason",
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
    "grant",
    "target_audience",
    "requested_scope",
    "granted_scope",
    "cache_hit",
    "upstream_error",
    "jkt",
    "jti",
    "count",
    "last_seen_at",
)


def chain_parts(subject: str, chain: Any) -> list[str]:
    """``[user, first actor, …, current actor]`` from a newest-first chain."""
    actors = [str(a) for a in chain] if isinstance(chain, list) else []
    return [subject or "?", *reversed(actors)]


def draw_chain(subject: str, chain: Any) -> str:
    return ARROW.join(chain_parts(subject, chain))


class CheapCountPaginator(Paginator):  # type: ignore[type-arg]
    """Counts exactly up to ``exact_limit`` rows; past that, PostgreSQL's planner estimate.

    The bounded count (``COUNT(*)`` over a ``LIMIT``ed subquery) reads at most ``exact_limit + 1``
    index entries; only when it overflows does the table get counted, and on PostgreSQL even then
    the planner's row estimate is used instead of a full scan. Pages past an under-estimate are
    reached by narrowing the filters or the date hierarchy.
    """

    exact_limit = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        unordered = queryset.order_by()
        bounded = unordered[: self.exact_limit + 1].count()
        if bounded <= self.exact_limit:
            return bounded
        estimate = _planner_estimate(unordered)
        return max(estimate, bounded) if estimate is not None else unordered.count()


def _planner_estimate(queryset: QuerySet[DelegationEvent]) -> int | None:
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class _Echo:
    """A write-only file for ``csv.writer`` that hands each line back."""

    def write(self, value: str) -> str:
        return value


#: What makes a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = frozenset("=+-@\t\r\n")


def csv_cell(value: Any) -> str:
    """Render a cell; neutralise spreadsheet formulas (CSV injection) in text cells, also when
    whitespace comes before the formula character (spreadsheets skip it)."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text[:1] in FORMULA_STARTS or text.lstrip()[:1] in FORMULA_STARTS:
        text = "'" + text
    return text


def export_rows(queryset: QuerySet[DelegationEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for row in queryset.values_list(*EXPORT_FIELDS).iterator(chunk_size=2000):
        values = dict(zip(EXPORT_FIELDS, row, strict=True))
        values["delegation_chain"] = draw_chain(values["subject"], values["delegation_chain"])
        yield writer.writerow([csv_cell(values[name]) for name in EXPORT_FIELDS])


@admin.register(DelegationEvent)
class DelegationEventAdmin(OverviewAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "created_at",
        "subject",
        "chain",
        "audience_display",
        "outcome_badge",
        "kind",
        "count",
    )
    list_display_links = ("created_at",)
    list_filter = (
        "outcome",
        "kind",
        ("current_actor", admin.AllValuesFieldListFilter),
        ("audience", admin.AllValuesFieldListFilter),
    )
    date_hierarchy = "created_at"
    search_fields = ("subject", "current_actor", "path")
    ordering = ("-created_at",)
    list_per_page = 100
    show_full_result_count = False
    paginator = CheapCountPaginator
    actions = ("export_csv", "purge_selected")
    fieldsets = (
        (
            "Decision",
            {"fields": ("created_at", "last_seen_at", "count", "kind", "outcome", "reason")},
        ),
        (
            "Who acted for whom",
            {
                "fields": (
                    "chain_diagram",
                    "subject",
                    "current_actor",
                    "delegation_chain",
                    "depth",
                    "azp",
                    "org_id",
                )
            },
        ),
        (
            "Request",
            {"fields": ("method", "path", "view_name", "audience", "scopes", "jkt", "jti")},
        ),
        (
            "Exchange",
            {
                "fields": (
                    "grant",
                    "target_audience",
                    "requested_scope",
                    "granted_scope",
                    "cache_hit",
                    "upstream_error",
                )
            },
        ),
    )

    # Read-only: the trail is written by the app, never edited by hand.

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """A request's page leaves out the (empty) exchange section."""
        if obj is not None and obj.kind == DelegationEvent.Kind.REQUEST:
            return tuple(fs for fs in self.fieldsets if fs[0] != "Exchange")
        return self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [str(name) for _, options in self.fieldsets for name in options["fields"]]

    # Columns.

    @admin.display(description="chain (who acted for whom)")
    def chain(self, obj: DelegationEvent) -> str:
        return draw_chain(obj.subject, obj.delegation_chain)

    @admin.display(description="audience", ordering="audience")
    def audience_display(self, obj: DelegationEvent) -> str:
        if obj.kind == DelegationEvent.Kind.EXCHANGE and obj.target_audience:
            return f"{obj.audience or '?'}{ARROW}{obj.target_audience}"
        return obj.audience

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj: DelegationEvent) -> SafeString:
        colour = "#2e7d32" if obj.outcome == DelegationEvent.Outcome.ALLOWED else "#c62828"
        label = obj.outcome if not obj.reason else f"{obj.outcome} ({obj.reason})"
        return format_html(
            '<span class="auth0-obo-outcome" data-outcome="{}" style="color:{}">{}</span>',
            obj.outcome,
            colour,
            label,
        )

    @admin.display(description="who acted for whom")
    def chain_diagram(self, obj: DelegationEvent) -> SafeString:
        parts = chain_parts(obj.subject, obj.delegation_chain)
        roles = ["user"] + [
            "current actor" if i == len(parts) - 1 else f"actor {i}" for i in range(1, len(parts))
        ]
        items: Iterable[tuple[str, str]] = zip(parts, roles, strict=True)
        return format_html(
            '<ol class="auth0-obo-chain">{}</ol>',
            format_html_join("", "<li><code>{}</code> <small>({})</small></li>", items),
        )

    # Actions.

    @admin.action(description="Export selected events as CSV", permissions=["view"])
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[DelegationEvent]
    ) -> StreamingHttpResponse:
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(
            export_rows(queryset.order_by("-created_at")), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="delegation-events-{stamp}.csv"'
        return response

    @admin.action(description="Purge selected events (superusers)", permissions=["purge"])
    def purge_selected(self, request: HttpRequest, queryset: QuerySet[DelegationEvent]) -> None:
        deleted, _ = queryset.order_by().delete()
        self.message_user(request, f"Purged {deleted} delegation event(s).", messages.SUCCESS)

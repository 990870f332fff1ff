"""Admin for the exchanged-token cache (ExchangedToken): read-only, with a "revoke" action.

The token is never shown, searched or exported: ``encrypted_token`` (and the lookup ``key``) are
left out of every view. Revoking deletes the cached row, so the next call exchanges again; the
issued token itself stays valid at the tenant until it expires.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.utils import timezone

from django_auth0_obo.models import ExchangedToken

#: Columns never rendered anywhere in the admin.
HIDDEN_FIELDS = ("encrypted_token", "key")


class ExpiryFilter(admin.SimpleListFilter):
    """Whether a row is still served (the refresh margin aside) or only awaits purging."""

    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(cached_until__gt=now)
        if self.value() == "expired":
            return queryset.filter(cached_until__lte=now)
        return queryset


@admin.register(ExchangedToken)
class ExchangedTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "subject",
        "actor",
        "audience",
        "scope",
        "grant",
        "token_type",
        "expires_at",
        "cached_until",
        "hit_count",
        "last_used_at",
    )
    list_filter = ("grant", "token_type", ExpiryFilter, "audience")
    search_fields = ("subject", "actor", "audience", "org_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    exclude = HIDDEN_FIELDS
    readonly_fields = (
        "grant",
        "subject",
        "actor",
        "audience",
        "scope",
        "org_id",
        "token_type",
        "issued_token_type",
        "expires_at",
        "cached_until",
        "created_at",
        "last_used_at",
        "hit_count",
    )
    fields = readonly_fields
    actions = ("revoke",)
    show_full_result_count = False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        """Refuse querystring lookups on hidden columns (``?encrypted_token__startswith=``
        would let a view-only user read the ciphertext, or probe ``key``, one character at a
        time); Django answers such a request 400."""
        if lookup.split(LOOKUP_SEP, 1)[0] in HIDDEN_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        """Token rows only (leases of exchanges in progress are not tokens), no ciphertext."""
        return super().get_queryset(request).exclude(encrypted_token="").defer(*HIDDEN_FIELDS)

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        """Every action but ``delete_selected`` (``revoke`` says what deleting means here).

        ``action_location`` is Django 6.1's (it deprecates overrides without it); older Django
        never passes it, so it is forwarded only when given.
        """
        if action_location is None:
            actions = super().get_actions(request)
        else:
            actions = super().get_actions(request, action_location=action_location)  # type: ignore[call-arg]
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Revoke (delete) selected cached tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        from django_auth0_obo.token_cache import revoke_tokens

        deleted = revoke_tokens(queryset)  # every worker's memo forgets them too
        self.message_user(
            request,
            f"Revoked {deleted} cached token(s); the next call exchanges again.",
            messages.SUCCESS,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

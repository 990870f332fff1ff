"""The delegation audit trail: one ``DelegationEvent`` row per audited request or exchange.

How a request's row is written exactly once, after the permission decision, with nothing in the
view but ``Auth0Authentication``:

1. ``token_verified`` (sent by the authentication class on success) calls :func:`begin`, which
   builds a pending event from the verified claims and the request (never the token) and keeps it
   on the Django request. When the DRF view is known, its ``check_permissions`` is wrapped on that
   view *instance*: DRF authenticates in ``initial()`` just before it checks permissions, so the
   wrapper sees the whole decision, whichever permission classes the view uses.
2. Our permissions call :func:`mark_denied` with their reason code when the view refuses.
3. The wrapper writes the row as soon as the decision is known: ``allowed`` when
   ``check_permissions`` returns, ``denied`` (with our reason, or the DRF exception's code for
   other permission classes) when it raises.
4. Backstop: every pending event is also listed in a context variable, and ``request_finished``
   writes any that were not written yet (a view that authenticates lazily inside its permission
   check, or a call outside a DRF view). Under ``ATOMIC_REQUESTS`` rows are deferred to
   ``request_finished`` too, so a rolled-back request (DRF rolls back on every 403) does not take
   its denial row with it. A ``written`` flag makes every path idempotent.

Rows are not written by the request: :mod:`.audit_buffer` queues them and writes them in batches
(a database error keeps them queued; it never fails the request).
Exchanges are recorded from the ``token_exchanged`` / ``exchange_failed`` signals (kind
``exchange``).
"""

from __future__ import annotations

import contextvars
import functools
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import connections, router
from django.utils import timezone
from rest_framework.request import Request

from django_auth0_obo import audit_buffer, signals
from django_auth0_obo.act import get_delegation_chain
from django_auth0_obo.conf import obo_settings
from django_auth0_obo.exceptions import InvalidActClaim
from django_auth0_obo.verified import VerifiedToken

logger = logging.getLogger("django_auth0_obo")

#: Attribute on the Django ``HttpRequest`` holding its pending event.
PENDING_ATTRIBUTE = "auth0_obo_audit_event"
#: Marker set on a view instance once its ``check_permissions`` is wrapped.
HOOKED_ATTRIBUTE = "_auth0_obo_check_permissions_hooked"

ALLOWED = "allowed"
DENIED = "denied"


@dataclass
class PendingEvent:
    """A row waiting for the permission decision. ``selected``: AUDIT wants it even if allowed."""

    fields: dict[str, Any]
    selected: bool
    outcome: str = ALLOWED
    reason: str = ""
    written: bool = field(default=False)


_pending: contextvars.ContextVar[list[PendingEvent] | None] = contextvars.ContextVar(
    "auth0_obo_pending_events", default=None
)


def begin(request: Request, token: VerifiedToken) -> PendingEvent | None:
    """Start the audit record of a request authenticated by ``token`` (see module docstring)."""
    mode = obo_settings.AUDIT
    if mode == "off":
        return None
    django_request = getattr(request, "_request", request)
    existing: PendingEvent | None = getattr(django_request, PENDING_ATTRIBUTE, None)
    if existing is not None:
        return existing
    view = (getattr(request, "parser_context", None) or {}).get("view")
    event = PendingEvent(
        fields=request_fields(request, token, view),
        selected=mode == "all" or token.is_delegated,
    )
    setattr(django_request, PENDING_ATTRIBUTE, event)
    _remember(event)
    if view is not None:
        _hook_check_permissions(view, event)
    return event


def mark_denied(request: Request, reason: str) -> None:
    """Record that the view refused this request, and why (a stable reason code)."""
    event = getattr(getattr(request, "_request", request), PENDING_ATTRIBUTE, None)
    if event is not None and not event.written:
        event.outcome = DENIED
        event.reason = reason


def settle(event: PendingEvent) -> None:
    """Write ``event`` if AUDIT wants it (denials always, unless AUDIT is off); at most once."""
    if event.written:
        return
    if _in_request_transaction():
        return  # request_finished writes it once the request's transaction is over
    _write_once(event)


def _write_once(event: PendingEvent) -> None:
    event.written = True
    if event.selected or event.outcome == DENIED:
        write_event({**event.fields, "outcome": event.outcome, "reason": event.reason})


def write_event(fields: dict[str, Any]) -> None:
    """Hand one row to the audit buffer (:mod:`.audit_buffer`), which writes it in a batch."""
    audit_buffer.add(fields)


def flush() -> int:
    """Write every buffered audit row now (tests, shutdown hooks); return how many rows."""
    return audit_buffer.flush()


def request_fields(request: Request, token: VerifiedToken, view: Any = None) -> dict[str, Any]:
    """The audit fields of a request: who acted for whom, where; claims only, never the token."""
    django_request = getattr(request, "_request", request)
    match = getattr(django_request, "resolver_match", None)
    view_name = (match.view_name if match is not None else "") or (
        type(view).__qualname__ if view is not None else ""
    )
    return token_fields(
        token,
        method=django_request.method or "",
        path=django_request.path,  # never the query string: it may carry secrets
        view_name=view_name,
        audience=_matched_audience(token.claims, view),
    )


def token_fields(
    token: VerifiedToken, *, method: str, path: str, view_name: str, audience: str
) -> dict[str, Any]:
    """The audit fields of a call made with ``token`` (also for non-DRF callers, e.g. MCP)."""
    claims = token.claims
    chain = token.delegation_chain
    return {
        "kind": "request",
        "subject": _str(claims.get("sub")),
        "current_actor": chain[0] if chain else "",
        "delegation_chain": chain,
        "depth": len(chain),
        "azp": _str(claims.get("azp")),
        "org_id": _str(claims.get("org_id")),
        "audience": audience,
        "scopes": " ".join(sorted(token.scopes)),
        "method": method,
        "path": path,
        "view_name": view_name,
        "jkt": token.jkt or "",
        "jti": _str(claims.get("jti")),
    }


def _hook_check_permissions(view: Any, event: PendingEvent) -> None:
    if getattr(view, HOOKED_ATTRIBUTE, False):
        return
    original = view.check_permissions

    @functools.wraps(original)
    def check_permissions(request: Request) -> None:
        try:
            original(request)
        except Exception as error:
            if event.outcome != DENIED and not event.written:
                event.outcome = DENIED
                event.reason = str(getattr(error, "default_code", "") or type(error).__name__)
            settle(event)
            raise
        settle(event)

    view.check_permissions = check_permissions
    setattr(view, HOOKED_ATTRIBUTE, True)


def _remember(event: PendingEvent) -> None:
    events = _pending.get()
    if events is None:
        events = []
        _pending.set(events)
    events.append(event)


def _flush_pending(**kwargs: Any) -> None:
    events = _pending.get()
    if not events:
        return
    _pending.set(None)
    for event in events:
        if not event.written:
            _write_once(event)


def _in_request_transaction() -> bool:
    from django_auth0_obo.models import DelegationEvent

    connection = connections[router.db_for_write(DelegationEvent)]
    return bool(connection.settings_dict.get("ATOMIC_REQUESTS")) and connection.in_atomic_block


# Rows left behind by a previous request in this context (no request_finished, e.g. a view
# called directly) are written when the next one starts rather than lost.
request_started.connect(_flush_pending, dispatch_uid="django_auth0_obo.audit.started")
request_finished.connect(_flush_pending, dispatch_uid="django_auth0_obo.audit.finished")


def _on_token_verified(sender: Any, request: Request, token: VerifiedToken, **kwargs: Any) -> None:
    begin(request, token)


signals.token_verified.connect(_on_token_verified, dispatch_uid="django_auth0_obo.audit.verified")


# Exchanges.


def record_exchange(
    *,
    outcome: str,
    grant: str | None,
    subject: str | None,
    audience: str | None,
    requested_scope: str | None = None,
    granted_scope: str | None = None,
    cache_hit: bool | None = None,
    claims: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Write one ``exchange`` row: this API (the new actor) asked for ``audience``."""
    if obo_settings.AUDIT == "off":
        return
    claims = claims or {}
    try:
        earlier = get_delegation_chain(claims)
    except InvalidActClaim:  # unverified claims: keep the row, drop the chain
        earlier = []
    me = obo_settings.CLIENT_ID or ""
    chain = [me, *earlier] if me else earlier
    fields = {
        "kind": "exchange",
        "grant": grant or "",
        "subject": subject or _str(claims.get("sub")),
        "current_actor": me,
        "delegation_chain": chain,
        "depth": len(chain),
        "azp": _str(claims.get("azp")),
        "org_id": _str(claims.get("org_id")),
        "audience": _matched_audience(claims, None),
        "scopes": _str(claims.get("scope")),
        "target_audience": audience or "",
        "requested_scope": requested_scope or "",
        "granted_scope": granted_scope or "",
        "cache_hit": cache_hit,
        "outcome": outcome,
        "reason": (error or "")[:64],
        "upstream_error": (error or "")[:64],
        "jti": _str(claims.get("jti")),
        "jkt": _str(cnf.get("jkt")) if isinstance(cnf := claims.get("cnf"), dict) else "",
    }
    event = PendingEvent(fields=fields, selected=True, outcome=outcome, reason=(error or "")[:64])
    if _in_request_transaction():
        _remember(event)
        return
    _write_once(event)


def _record_from_signal(outcome: str, kwargs: dict[str, Any]) -> None:
    """Turn the kwargs of ``token_exchanged`` / ``exchange_failed`` into an exchange row."""
    record_exchange(
        outcome=outcome,
        grant=kwargs.get("grant"),
        subject=kwargs.get("subject"),
        audience=kwargs.get("audience"),
        requested_scope=kwargs.get("requested_scope"),
        granted_scope=kwargs.get("granted_scope"),
        cache_hit=kwargs.get("cache_hit"),
        claims=kwargs.get("claims"),
        error=(kwargs.get("error") or "exchange_failed") if outcome == DENIED else None,
    )


def _on_token_exchanged(sender: Any, **kwargs: Any) -> None:
    _record_from_signal(ALLOWED, kwargs)


def _on_exchange_failed(sender: Any, **kwargs: Any) -> None:
    _record_from_signal(DENIED, kwargs)


signals.token_exchanged.connect(_on_token_exchanged, dispatch_uid="django_auth0_obo.audit.exch")
signals.exchange_failed.connect(
    _on_exchange_failed, dispatch_uid="django_auth0_obo.audit.exch_failed"
)


# Retention.


def purge_old_events(days: int | None = None, batch_size: int = 1000, dry_run: bool = False) -> int:
    """Delete rows older than ``days`` (default AUDIT_RETENTION_DAYS) in batches; return how many
    were (or, with ``dry_run``, would be) deleted."""
    from django_auth0_obo.models import DelegationEvent

    if days is None:
        days = obo_settings.AUDIT_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    old = DelegationEvent.objects.filter(created_at__lt=cutoff).order_by()
    if dry_run:
        return old.count()
    total = 0
    while True:
        ids = list(old.values_list("pk", flat=True)[: max(1, batch_size)])
        if not ids:
            return total
        deleted, _ = DelegationEvent.objects.filter(pk__in=ids).delete()
        total += deleted


# Helpers.


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _matched_audience(claims: dict[str, Any] | Any, view: Any) -> str:
    """The token audience this API accepted it for (the view's narrowing, else the settings')."""
    aud = claims.get("aud") if hasattr(claims, "get") else None
    auds = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
    accepted: tuple[str, ...] = ()
    narrowed = getattr(view, "audience", None) if view is not None else None
    if narrowed:
        accepted = (narrowed,) if isinstance(narrowed, str) else tuple(narrowed)
    else:
        accepted = obo_settings.audiences
    for candidate in auds:
        if candidate in accepted:
            return candidate
    return auds[0] if auds else ""

"""The delegation audit trail: one ``DelegationEvent`` row per audited request or exchange.

How a request's row is written exactly once, after the permission decision, with nothing in the
view but ``Auth0Authentication`` (the order of calls is told in :mod:`.instrument`):

1. :func:`begin` builds a pending event from the verified token and the request (never the
   token itself) and keeps it on the Django request. A request whose row AUDIT wants only if it
   is refused (no delegation, AUDIT "delegated") keeps the verified token instead, and its event
   is built on a refusal.
2. Our permissions call :func:`mark_denied` with their reason code when the view refuses.
3. :func:`decided` writes the row as soon as the view's ``check_permissions`` has returned
   (``allowed``) or raised (``denied``, with our reason, or the DRF exception's code for other
   permission classes).
4. Backstop: every pending event is also listed in a context variable, and ``request_finished``
   writes any that were not written yet (a view that authenticates lazily inside its permission
   check, or a call outside a DRF view). Under ``ATOMIC_REQUESTS`` rows are deferred to
   ``request_finished`` too, so a rolled-back request (DRF rolls back on every 403) does not take
   its denial row with it. A ``written`` flag makes every path idempotent.

Rows are not written by the request: :mod:`.audit_buffer` queues them and writes them in batches
(a database error keeps them queued, logs at ERROR and sends ``audit_write_failed``; it never
fails the request). What cannot be stored (NUL, lone surrogates) is escaped by :func:`storable`
when the fields are built, so no request can make its row fail.
Exchanges are recorded from the ``token_exchanged`` / ``exchange_failed`` signals (kind
``exchange``).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.utils import timezone
from rest_framework.request import Request

from django_auth0_obo import audit_buffer, signals
from django_auth0_obo.act import get_delegation_chain
from django_auth0_obo.conf import obo_settings
from django_auth0_obo.exceptions import InvalidActClaim
from django_auth0_obo.tokens import bound_jkt
from django_auth0_obo.verified import VerifiedToken

logger = logging.getLogger("django_auth0_obo")

_T = TypeVar("_T")

#: Attribute on the Django ``HttpRequest`` holding its pending event.
PENDING_ATTRIBUTE = "auth0_obo_audit_event"
#: Attribute on the Django ``HttpRequest`` holding the token of a request whose row AUDIT wants
#: only if it is refused, until its permission decision.
REFUSABLE_ATTRIBUTE = "auth0_obo_audit_refusable"

ALLOWED = "allowed"
DENIED = "denied"


@dataclass
class PendingEvent:
    """A row waiting for the permission decision. ``selected``: AUDIT wants it even if allowed.

    ``fields`` builds the row's fields when it is written: most requests under the default AUDIT
    carry a token nobody acts for, whose allowed row is never written, so building (and escaping)
    its fields on every request would cost for nothing.
    """

    fields: Callable[[], dict[str, Any]]
    selected: bool
    outcome: str = ALLOWED
    reason: str = ""
    written: bool = field(default=False)


_pending: contextvars.ContextVar[list[PendingEvent] | None] = contextvars.ContextVar(
    "auth0_obo_pending_events", default=None
)


def begin(request: Request, token: VerifiedToken) -> bool:
    """Start the audit record of a request authenticated by ``token`` (see module docstring);
    return whether the audit listens for this request's permission decision (not when off).

    Most requests under the default AUDIT carry a token nobody acts for, whose row is written
    only if the view refuses it: for those only the token is kept, and the pending event is
    built on a refusal (:func:`mark_denied`, :func:`decided`), not on every request."""
    mode = obo_settings.AUDIT
    if mode == "off":
        return False
    django_request = getattr(request, "_request", request)
    if getattr(django_request, PENDING_ATTRIBUTE, None) is not None:
        return True
    if mode != "all" and not token.is_delegated:
        if getattr(django_request, REFUSABLE_ATTRIBUTE, None) is None:
            setattr(django_request, REFUSABLE_ATTRIBUTE, token)
        return True
    _start(request, django_request, token, selected=True)
    return True


def _start(
    request: Request, django_request: Any, token: VerifiedToken, *, selected: bool
) -> PendingEvent:
    view = (getattr(request, "parser_context", None) or {}).get("view")
    event = PendingEvent(
        fields=functools.partial(request_fields, request, token, view), selected=selected
    )
    setattr(django_request, PENDING_ATTRIBUTE, event)
    _remember(event)
    return event


def _refused_event(request: Request) -> PendingEvent | None:
    """The pending event of a refused request: the one :func:`begin` built, or, for a request
    whose row AUDIT wants only when refused, one built now from the token it kept."""
    django_request = getattr(request, "_request", request)
    event: PendingEvent | None = getattr(django_request, PENDING_ATTRIBUTE, None)
    if event is not None:
        return event
    token = getattr(django_request, REFUSABLE_ATTRIBUTE, None)
    if token is None:
        return None
    delattr(django_request, REFUSABLE_ATTRIBUTE)
    return _start(request, django_request, token, selected=False)


def decided(request: Request, error: BaseException | None = None) -> None:
    """The view's permission check returned (``error`` None) or raised ``error``: write the row."""
    if error is None:
        django_request = getattr(request, "_request", request)
        event = getattr(django_request, PENDING_ATTRIBUTE, None)
        if event is None:
            # Allowed, and AUDIT wants no row for it: a later refusal (an object permission)
            # is not this decision's, as for a request whose allowed row was written.
            if getattr(django_request, REFUSABLE_ATTRIBUTE, None) is not None:
                delattr(django_request, REFUSABLE_ATTRIBUTE)
            return
    else:
        event = _refused_event(request)
        if event is None:
            return
        if event.outcome != DENIED and not event.written:
            event.outcome = DENIED
            event.reason = _error_code(error)
    settle(event)


def _error_code(error: BaseException) -> str:
    """The reason of a refusal by another permission class: the code DRF raised it with (a
    permission's own ``code``, e.g. ``maintenance``), else the exception's default code."""
    code = getattr(getattr(error, "detail", None), "code", None)
    if not isinstance(code, str) or not code:
        code = getattr(error, "default_code", "") or type(error).__name__
    return storable(str(code))


def mark_denied(request: Request, reason: str) -> None:
    """Record that the view refused this request, and why (a stable reason code)."""
    event = _refused_event(request)
    if event is not None and not event.written:
        event.outcome = DENIED
        event.reason = reason


def settle(event: PendingEvent) -> None:
    """Write ``event`` if AUDIT wants it (denials always, unless AUDIT is off); at most once."""
    if event.written:
        return
    if _in_request_transaction():
        return  # request_finished writes it once the request's transaction is over
    if not event.selected and event.outcome != DENIED:
        event.written = True  # an allowed row AUDIT does not want: nothing to build or write
        return
    _write_once(event)


def _write_once(event: PendingEvent) -> None:
    event.written = True
    if event.selected or event.outcome == DENIED:
        write_event({**event.fields(), "outcome": event.outcome, "reason": event.reason})


def write_event(fields: dict[str, Any], *, identity: Hashable = None) -> None:
    """Hand one row to the audit buffer (:mod:`.audit_buffer`), which writes it in a batch."""
    audit_buffer.add(fields, identity=identity)


def storable(value: _T) -> _T:
    """``value`` (a string, or a list or dict of them) with what a database cannot store
    escaped: NUL (PostgreSQL text and jsonb refuse it) and lone surrogates (not UTF-8) become
    ``\\uXXXX``, and ``\\`` becomes ``\\\\`` so an escape cannot be forged by sending one."""
    escaped: Any = value
    if isinstance(escaped, str):
        if escaped.isascii() and "\\" not in escaped and "\x00" not in escaped:
            return value  # the usual case, decided without the pattern (this runs per field)
        escaped = _UNSTORABLE.sub(_escape, escaped)
    elif isinstance(value, list):
        escaped = [storable(item) for item in value]
    elif isinstance(value, dict):
        escaped = {storable(key): storable(item) for key, item in value.items()}
    return cast(_T, escaped)


_UNSTORABLE = re.compile(r"[\\\x00\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\u{ord(char):04x}"


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
    )


def token_fields(
    token: VerifiedToken, *, method: str, path: str, view_name: str, audience: str | None = None
) -> dict[str, Any]:
    """The audit fields of a call made with ``token`` (DRF views, and callers outside DRF),
    escaped for storage. ``audience`` defaults to the one verification matched."""
    claims = token.claims
    chain = token.delegation_chain
    return storable(
        {
            "kind": "request",
            "subject": _str(claims.get("sub")),
            "current_actor": chain[0] if chain else "",
            "actor_client_id": token.actor_client_id or "",
            "actor_profile": token.actor_profile or "",
            "delegation_chain": chain,
            "depth": len(chain),
            "azp": _str(claims.get("azp")) or _str(claims.get("client_id")),
            "org_id": _str(claims.get("org_id")),
            "audience": token.audience if audience is None else audience,
            "scopes": " ".join(sorted(token.scopes)),
            "method": method,
            "path": path,
            "view_name": view_name,
            "jkt": token.jkt or "",
            "jti": _str(claims.get("jti")),
        }
    )


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
    """Whether the audit's database is inside a request's ``ATOMIC_REQUESTS`` transaction.

    The setting is read from ``connections.settings``, the very dict each connection keeps as
    its ``settings_dict``, so the usual case (no ``ATOMIC_REQUESTS``) is decided without the
    per-thread connection lookup; this runs on every authenticated request."""
    alias = _audit_database()
    if not connections.settings[alias].get("ATOMIC_REQUESTS"):
        return False
    return bool(connections[alias].in_atomic_block)


def _audit_database() -> str:
    """The database the audit writes to: the routers' choice, or ``default`` without any."""
    if not router.routers:
        return DEFAULT_DB_ALIAS
    from django_auth0_obo.models import DelegationEvent

    return router.db_for_write(DelegationEvent)


# Rows left behind by a previous request in this context (no request_finished, e.g. a view
# called directly) are written when the next one starts rather than lost.
request_started.connect(_flush_pending, dispatch_uid="django_auth0_obo.audit.started")
request_finished.connect(_flush_pending, dispatch_uid="django_auth0_obo.audit.finished")


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
    subject_audience: str | None = None,
) -> None:
    """Write one ``exchange`` row: this API (the new actor) asked for ``audience``."""
    if obo_settings.AUDIT == "off":
        return
    verified = claims is not None
    claims = claims or {}
    try:
        earlier = get_delegation_chain(claims)
    except InvalidActClaim:  # unverified claims: keep the row, drop the chain
        earlier = []
    me = obo_settings.CLIENT_ID or ""
    chain = [me, *earlier] if me else earlier
    identity: tuple[Any, ...] | None = None
    if cache_hit is True and outcome == ALLOWED and not error:
        # Everything the row's fields are made of, so an identical hit is counted on the row
        # already buffered without building and escaping its fields again.
        identity = (
            grant, subject, audience, requested_scope, granted_scope, subject_audience,
            verified, me, tuple(chain), claims.get("sub"), claims.get("azp"),
            claims.get("org_id"), claims.get("scope"), claims.get("jti"), bound_jkt(claims),
        )  # fmt: skip
        try:
            hash(identity)
        except TypeError:  # a claim of an odd JSON type: counted by the fields, as below
            identity = None
        if (
            identity is not None
            and not _in_request_transaction()
            and audit_buffer.count_hit(identity)
        ):
            return
    reason = storable((error or "")[:64])
    fields = storable(
        {
            "kind": "exchange",
            "grant": grant or "",
            "subject": subject or _str(claims.get("sub")),
            "current_actor": me,
            "delegation_chain": chain,
            "depth": len(chain),
            "azp": _str(claims.get("azp")),
            "org_id": _str(claims.get("org_id")),
            "audience": subject_audience or "",
            "scopes": _str(claims.get("scope")),
            "target_audience": audience or "",
            "requested_scope": requested_scope or "",
            "granted_scope": granted_scope or "",
            "cache_hit": cache_hit,
            "outcome": outcome,
            "reason": reason,
            "upstream_error": reason,
            "jti": _str(claims.get("jti")),
            "jkt": bound_jkt(claims) or "",
            # A subject read from a raw-string token is the caller's word, unless the tenant
            # accepted that token (the exchange succeeded).
            "subject_verified": verified or outcome == ALLOWED,
        }
    )
    event = PendingEvent(fields=lambda: fields, selected=True, outcome=outcome, reason=reason)
    if _in_request_transaction():
        _remember(event)
        return
    event.written = True
    write_event({**fields, "outcome": outcome, "reason": reason}, identity=identity)


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
        subject_audience=kwargs.get("subject_audience"),
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

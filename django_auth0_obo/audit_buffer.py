"""Buffered audit writes: rows queue in this process and are written in batches, never lost quietly.

An INSERT and a commit per audited request would cost more than the request it records (and at
300 requests/s add 26 million rows a day). So :func:`add` only appends the row to a per-process
buffer; a daemon thread writes the buffer with ``bulk_create`` in batches of ``AUDIT_BATCH_SIZE``:

- every ``AUDIT_FLUSH_INTERVAL`` seconds, and at once when a batch's worth is waiting;
- at interpreter exit (``atexit``): a gunicorn worker stopped with SIGTERM/SIGQUIT/SIGINT leaves
  through ``sys.exit``, so its rows are written before it goes (a ``worker_exit`` hook calling
  :func:`flush` is equivalent and harmless);
- whenever someone calls :func:`flush` (tests, shutdown hooks of other servers).

Identical exchange cache hits (every field equal, ``cache_hit`` true) waiting in the same buffer
are one row whose ``count`` grows and whose ``last_seen_at`` moves; nothing is dropped, only
counted. A crash (SIGKILL, OOM) loses at most what was buffered: one flush interval of rows.

When the database refuses a batch (outage, failover, a killed backend) the rows go back to the
front of the buffer and are written by a later flush, on a fresh connection, once the database
answers. The buffer is bounded by ``AUDIT_MAX_BUFFERED`` rows; past it, new rows are dropped with
an ERROR log line per flush that counts them. With ``AUDIT_SYNC`` each row is written by the caller
before :func:`add` returns, as 0.1 did (it still falls back to the buffer when the write fails).

No row is ever written inside a transaction its caller opened (``transaction.atomic()`` around an
exchange that fails, say): rolling that transaction back would take the row with it, though the
buffer counted it as written. On such a connection :func:`add` and :func:`flush` leave the rows
queued, and the writer thread writes them on its own connection, outside that transaction.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Hashable
from typing import Any

from django.core.signals import request_finished
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone

from django_auth0_obo import signals, transactions
from django_auth0_obo.conf import obo_settings

logger = logging.getLogger("django_auth0_obo")


class AuditBuffer:
    """This process's unwritten audit rows (field dicts), oldest first, and their writer thread."""

    def __init__(self, *, background: bool = True) -> None:
        #: Start the writer thread on the first row (a test suite turns it off and flushes).
        self.background = background
        self._reset()

    def _reset(self) -> None:
        """Empty state; also what a forked child starts from (the parent writes its own rows)."""
        self._rows: list[dict[str, Any]] = []
        self._in_flight: list[dict[str, Any]] = []  # taken by the flush under way
        self._hits: dict[str, dict[str, Any]] = {}
        #: The same aggregated rows by their callers' identity (see :meth:`count_hit`).
        self._by_identity: dict[Hashable, dict[str, Any]] = {}
        self._dropped = 0
        self._last_flush = time.monotonic()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one flush at a time, so rows keep their order
        self._wake = threading.Event()

    # -- adding --------------------------------------------------------------------------------

    def add(self, fields: dict[str, Any], *, identity: Hashable = None) -> None:
        """Queue one row (``created_at`` is stamped now unless given); never raises.

        ``identity`` (exchange cache hits only): a key that determines ``fields`` entirely, under
        which :meth:`count_hit` finds the row this one is counted on.
        """
        now = timezone.now()
        row = {"created_at": now, **fields}
        row.setdefault("count", 1)
        aggregate = _hit_key(row)
        with self._lock:
            same = self._hits.get(aggregate) if aggregate is not None else None
            if same is not None:
                same["count"] += row["count"]
                same["last_seen_at"] = now
                if identity is not None:
                    self._by_identity[identity] = same
                return
            if len(self._rows) >= int(obo_settings.AUDIT_MAX_BUFFERED):
                self._dropped += 1
            else:
                self._rows.append(row)
                if aggregate is not None:
                    self._hits[aggregate] = row
                    if identity is not None:
                        self._by_identity[identity] = row
            pending = len(self._rows)
        if obo_settings.AUDIT_SYNC:
            self.flush()  # inside its caller's transaction it writes nothing: the writer will
            if len(self):  # refused: the writer thread retries
                self._ensure_writer()
            return
        self._ensure_writer()
        if pending >= int(obo_settings.AUDIT_BATCH_SIZE) or self._dropped:
            self._wake.set()

    def count_hit(self, identity: Hashable) -> bool:
        """Count one more exchange cache hit on the unwritten row added under ``identity``;
        False when there is none (written since, or never added): the caller then builds the
        row's fields and :meth:`add`\\ s them. Repeated hits skip building and escaping the
        same fields again, most of what auditing a hit cost."""
        with self._lock:
            row = self._by_identity.get(identity)
            if row is None:
                return False
            row["count"] += 1
            row["last_seen_at"] = timezone.now()
            return True

    def __len__(self) -> int:
        """Rows not written yet, those a flush is writing right now included."""
        with self._lock:
            return len(self._rows) + len(self._in_flight)

    def accounted(self) -> int:
        """Events not written yet (a row with ``count`` n stands for n events)."""
        with self._lock:
            return sum(int(row["count"]) for row in (*self._rows, *self._in_flight))

    def discard(self) -> int:
        """Forget every buffered row unwritten (tests); return how many events they stood for."""
        with self._lock:
            events = sum(int(row["count"]) for row in self._rows)
            self._rows, self._hits, self._dropped = [], {}, 0
            self._by_identity = {}
        return events

    # -- writing -------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write every buffered row now, in batches; return how many rows were written.

        Rows a failing database refused stay buffered (in order) for the next flush. Called
        inside a transaction of its caller's, it writes nothing: the writer thread will.
        """
        if _in_callers_transaction():
            self._ensure_writer()
            return 0
        with self._writing:
            with self._lock:
                rows, self._rows, self._hits = self._rows, [], {}
                self._by_identity = {}
                self._in_flight = rows
                dropped, self._dropped = self._dropped, 0
                self._last_flush = time.monotonic()
            if dropped:
                logger.error(
                    "Audit buffer full (AUDIT_MAX_BUFFERED=%s): %d delegation audit row(s) "
                    "were dropped because the database could not take them.",
                    obo_settings.AUDIT_MAX_BUFFERED,
                    dropped,
                )
            written = 0
            size = max(1, int(obo_settings.AUDIT_BATCH_SIZE))
            try:
                while written < len(rows):
                    batch = rows[written : written + size]
                    _write_batch(batch)
                    written += len(batch)
            except Exception as error:  # whatever failed, the rows are kept, never dropped
                self._requeue(rows[written:])
                logger.error(  # loud: a quiet failure would let a caller hide its own calls
                    "Could not write %d delegation audit row(s) (%s); kept for the next flush.",
                    len(rows) - written,
                    type(error).__name__,
                    exc_info=not isinstance(error, DatabaseError),
                )
                signals.audit_write_failed.send(
                    sender=AuditBuffer, error=error, rows=list(rows[written:])
                )
                if isinstance(error, DatabaseError):
                    _close_broken_connection()
            finally:
                with self._lock:
                    self._in_flight = []
            return written

    def _requeue(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._in_flight = []
            merged = rows + self._rows
            bound = int(obo_settings.AUDIT_MAX_BUFFERED)
            self._dropped += max(0, len(merged) - bound)
            self._rows = merged[:bound]  # keep the oldest: they have waited longest
            kept = {id(row) for row in self._rows}
            self._hits = {k: row for k, row in self._hits.items() if id(row) in kept}

    # -- the writer thread ---------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._thread is not None or not self.background:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="auth0-obo-audit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(max(0.01, float(obo_settings.AUDIT_FLUSH_INTERVAL)))  # W004
            self._wake.clear()
            try:
                connections[_alias()].close_if_unusable_or_obsolete()
                self.flush()
            except Exception:  # the writer must outlive anything; the rows stay buffered
                logger.exception("The audit writer thread failed a flush; retrying later.")

    def wake_if_due(self) -> None:
        """At a request's end: nudge the writer when the interval has passed (no I/O here)."""
        interval = float(obo_settings.AUDIT_FLUSH_INTERVAL)
        if self._rows and time.monotonic() - self._last_flush >= interval:
            self._wake.set()


#: Fields that may differ between two rows of the same aggregated event.
_NOT_IDENTITY = frozenset({"created_at", "last_seen_at", "count"})


def _hit_key(row: dict[str, Any]) -> str | None:
    """What makes two exchange cache hits the same event (every field but the time), or None."""
    if row.get("kind") != "exchange" or row.get("cache_hit") is not True:
        return None
    identity = [(name, value) for name, value in row.items() if name not in _NOT_IDENTITY]
    identity.sort()  # names are unique: tuples compare by name alone
    return repr(identity)


def _alias() -> str:
    from django_auth0_obo.models import DelegationEvent

    return router.db_for_write(DelegationEvent)


def _in_callers_transaction() -> bool:
    """Whether this thread's audit connection is in a transaction its caller opened."""
    return transactions.in_callers_transaction(_alias())


def _write_batch(rows: list[dict[str, Any]]) -> None:
    """One ``bulk_create`` in its own transaction (a savepoint only inside a test case's)."""
    from django_auth0_obo.models import DelegationEvent

    alias = _alias()
    with transaction.atomic(using=alias):
        DelegationEvent.objects.using(alias).bulk_create([DelegationEvent(**_fit(r)) for r in rows])


def _fit(fields: dict[str, Any]) -> dict[str, Any]:
    """Cut strings to their column's max_length so PostgreSQL never refuses a long claim (done
    here, by the writer, rather than on the request's path)."""
    from django_auth0_obo.models import DelegationEvent

    out = dict(fields)
    for name, value in fields.items():
        if isinstance(value, str):
            max_length = DelegationEvent._meta.get_field(name).max_length  # type: ignore[union-attr]
            if max_length is not None:
                out[name] = value[:max_length]
    return out


def _close_broken_connection() -> None:
    """Drop this thread's connection after a failure (outside a transaction) so the next flush
    reconnects instead of reusing a dead socket."""
    connection = connections[_alias()]
    if connection.in_atomic_block:
        return
    with contextlib.suppress(DatabaseError):  # already dead: Django has forgotten it
        connection.close()


buffer = AuditBuffer()


def add(fields: dict[str, Any], *, identity: Hashable = None) -> None:
    """Queue one audit row for writing (see the module docstring)."""
    buffer.add(fields, identity=identity)


def count_hit(identity: Hashable) -> bool:
    """Count one more exchange cache hit on its buffered row, if there is one (see
    :meth:`AuditBuffer.count_hit`)."""
    return buffer.count_hit(identity)


def flush() -> int:
    """Write every buffered audit row now; return how many rows were written."""
    return buffer.flush()


def _at_exit() -> None:
    """Write what is left, after any flush under way (the writer thread is a daemon: it would be
    stopped mid-write at interpreter shutdown, so its rows are waited for here)."""
    if not len(buffer):
        return
    try:
        buffer.flush()
    finally:
        connections.close_all()
    left = buffer.accounted()
    if left:
        logger.error("%d delegation audit event(s) could not be written before exit.", left)


def _on_request_finished(**kwargs: Any) -> None:
    buffer.wake_if_due()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=buffer._reset)
request_finished.connect(_on_request_finished, dispatch_uid="django_auth0_obo.audit_buffer")

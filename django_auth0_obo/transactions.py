"""Writes that must not belong to a transaction the caller opened.

A view under ``ATOMIC_REQUESTS`` (or any ``transaction.atomic()`` block) runs inside a
transaction of its own: a row written there is invisible to other processes until the request
ends, keeps its locks until then, and goes away when the request rolls back (DRF rolls back on
every error response). For the app's bookkeeping — the exchanged-token cache's lease and rows,
hit counts, the audit — each of those is wrong: another worker waits on an uncommitted lease for
the rest of the request (or forever, when that request then waits on the other worker), and an
exchange or an audit row is lost with a rollback.

:func:`in_callers_transaction` says whether a write here would join such a transaction;
:func:`run_committed` runs a write in a transaction of its own that commits before it returns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connections, transaction

_T = TypeVar("_T")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def in_callers_transaction(alias: str) -> bool:
    """Whether this thread's connection to ``alias`` is inside a transaction its caller opened
    (an ``atomic`` block, or autocommit turned off), which a write there would belong to.

    The blocks Django's ``TestCase`` (and so pytest-django's ``django_db``) opens around a test
    do not count, so tests still read their rows at once: this mirrors Django's own check for
    ``atomic(durable=True)`` in ``Atomic.__enter__`` (``atomic_blocks[-1]._from_testcase``)."""
    connection = connections[alias]
    if connection.in_atomic_block:
        blocks = connection.atomic_blocks
        return not (blocks and getattr(blocks[-1], "_from_testcase", False))  # private: no stub
    # No I/O: without a connection there is no transaction, and with one this only reads it.
    return connection.connection is not None and not connection.get_autocommit()


def run_committed(alias: str, operation: Callable[[], _T], *, one_statement: bool = False) -> _T:
    """Run ``operation`` (ORM calls on ``alias``) in a transaction of its own, committed when
    this returns; its exceptions propagate.

    Outside a caller's transaction that is an ``atomic`` block here (a savepoint inside a test
    case's; none at all for ``one_statement`` in autocommit, which commits it alone). Inside one,
    the operation runs on this module's worker thread, on that thread's own connection. SQLite
    is the exception: it has one writer at a time, so a second connection would wait for the
    caller's transaction anyway; there the operation stays in a savepoint of the caller's
    transaction, as before."""
    connection = connections[alias]
    if not in_callers_transaction(alias) or connection.vendor == "sqlite":
        if one_statement and not connection.in_atomic_block:
            return operation()
        with transaction.atomic(using=alias):
            return operation()
    return _worker().submit(_in_own_transaction, alias, operation).result()


def close_connections() -> None:
    """Close the worker thread's database connections now (a test database about to be
    dropped, a process shutting down); the next write opens new ones."""
    with _executor_lock:
        executor = _executor
    if executor is not None:
        executor.submit(connections.close_all).result()


def _in_own_transaction(alias: str, operation: Callable[[], _T]) -> _T:
    try:
        with transaction.atomic(using=alias):
            return operation()
    finally:
        # CONN_MAX_AGE decides, as at the end of a request: kept, or closed now.
        connections[alias].close_if_unusable_or_obsolete()


def _worker() -> ThreadPoolExecutor:
    """One thread per process: writes from inside callers' transactions are rare and short,
    and one thread holds at most one extra connection per database."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(1, thread_name_prefix="django_auth0_obo-commit")
        return _executor


def _after_fork_in_child() -> None:
    """The parent's worker thread does not exist in a child: start a new one when needed."""
    global _executor, _executor_lock
    _executor = None
    _executor_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["close_connections", "in_callers_transaction", "run_committed"]

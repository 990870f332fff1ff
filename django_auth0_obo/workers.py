"""Blocking Django work (the ORM, the tenant) run off the event loop for the async entry points.

Not in Django's thread-sensitive thread (``thread_sensitive=False``): that thread serves the sync
parts of every request of the worker, so an exchange waiting on a slow tenant there would hold
up other requests. A worker thread's database connection obeys ``CONN_MAX_AGE`` like a request's
(closed after the call unless persistent connections are configured), so threads never pile up
connections.

The arguments are often tokens: both the coroutine and the thread's frame are
``sensitive_variables`` frames, and the thread is handed a closure (no arguments), so neither this
module's frames nor asgiref's show them in Django's error reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.views.decorators.debug import sensitive_variables

P = ParamSpec("P")
R = TypeVar("R")


@sensitive_variables()
async def run_in_worker(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Await ``function(*args, **kwargs)`` run in a worker thread (context variables copied)."""

    @sensitive_variables()
    def call() -> R:
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()

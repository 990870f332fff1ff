"""The exchanged-token cache inside a caller's transaction (``ATOMIC_REQUESTS``, ``atomic()``).

The lease, the cached row and their deletions are committed at once, on a connection of their
own, whatever transaction the view runs in: another worker sees the lease instead of waiting on
it for the rest of the request (or forever, when that request then waits on the other worker),
and a rollback of the request does not take the exchange with it. Threads with their own
connections stand for the other workers. PostgreSQL only: SQLite has one writer at a time, and
there the cache keeps writing in a savepoint of the caller's transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from django_auth0_obo.exchange import forget_token_on_behalf_of, get_token_on_behalf_of
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.testing import LocalTenant
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
        reason="concurrent writers: run with DATABASE_URL=postgres://...",
    ),
]

#: How long request A keeps its transaction open after its exchange (a downstream call, say).
HOLD = 1.5
SCOPE = "calendar:read"


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> LocalTenant:
    return configure(auth0_tenant, settings, AUDIT="off")


class Rollback(Exception):
    """What makes request A's transaction roll back (DRF's set_rollback on an error answer)."""


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``target`` on a thread of its own (its own database connection)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as error:
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def request_a(subject: str, exchanged: threading.Event, *, rollback: bool = False) -> None:
    """A request under ATOMIC_REQUESTS: exchange, then keep the transaction open for HOLD."""
    with transaction.atomic():
        get_token_on_behalf_of(subject, DOWNSTREAM, SCOPE)
        exchanged.set()
        time.sleep(HOLD)
        if rollback:
            raise Rollback


def test_another_worker_is_served_while_the_first_request_is_still_open(
    tenant: LocalTenant,
) -> None:
    subject = user_token(tenant)
    exchanged = threading.Event()
    thread, outcome = in_thread(lambda: request_a(subject, exchanged))
    assert exchanged.wait(10)

    started = time.monotonic()
    get_token_on_behalf_of(subject, DOWNSTREAM, SCOPE)  # another worker, autocommit
    waited = time.monotonic() - started
    thread.join(30)

    assert "error" not in outcome
    assert tenant.count("token") == 1
    assert waited < HOLD / 2  # served from the committed row, not after A's transaction


@pytest.mark.parametrize("concurrent", [False, True], ids=["after", "meanwhile"])
def test_a_rolled_back_request_keeps_its_exchange(tenant: LocalTenant, concurrent: bool) -> None:
    subject = user_token(tenant)
    exchanged = threading.Event()
    thread, outcome = in_thread(lambda: request_a(subject, exchanged, rollback=True))
    assert exchanged.wait(10)
    if not concurrent:
        thread.join(30)

    get_token_on_behalf_of(subject, DOWNSTREAM, SCOPE)
    thread.join(30)

    assert isinstance(outcome.get("error"), Rollback)
    assert tenant.count("token") == 1
    assert ExchangedToken.objects.exclude(encrypted_token="").count() == 1


def test_forgetting_and_exchanging_again_in_a_request_never_hangs(tenant: LocalTenant) -> None:
    """``OnBehalfOf``'s answer to a 401 ``invalid_token``: forget and exchange again, in the same
    request, while another thread of the same process asks for the same token. Before, that
    thread waited on the request's uncommitted lease while the request waited on that thread's
    exchange in flight: neither could go on."""
    subject = user_token(tenant)
    exchanged = threading.Event()
    backend: dict[str, int] = {}

    def request_with_a_retry() -> str:
        with transaction.atomic():
            get_token_on_behalf_of(subject, DOWNSTREAM, SCOPE)
            exchanged.set()
            time.sleep(0.5)  # the other thread asks meanwhile
            forget_token_on_behalf_of(subject, DOWNSTREAM, SCOPE)
            return get_token_on_behalf_of(subject, DOWNSTREAM, SCOPE)

    def other_thread() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend["pid"] = cursor.fetchone()[0]
        exchanged.wait(10)
        return get_token_on_behalf_of(subject, DOWNSTREAM, SCOPE)

    other, other_outcome = in_thread(other_thread)
    first, first_outcome = in_thread(request_with_a_retry)
    first.join(10)
    hung = first.is_alive()
    if hung:  # end the test: cancel the other thread's blocked statement
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_cancel_backend(%s)", [backend["pid"]])
    first.join(30)
    other.join(30)

    assert not hung
    assert "error" not in first_outcome
    assert "error" not in other_outcome
    assert tenant.count("token") <= 2  # the first exchange, and at most one after the forget


def test_two_requests_crossing_two_keys_neither_deadlock_nor_bypass_the_cache(
    tenant: LocalTenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="django_auth0_obo")
    subject = user_token(tenant)
    barrier = threading.Barrier(2)

    def request(first: str, second: str) -> Callable[[], None]:
        def run() -> None:
            with transaction.atomic():
                get_token_on_behalf_of(subject, DOWNSTREAM, first)
                barrier.wait(10)
                get_token_on_behalf_of(subject, DOWNSTREAM, second)
                time.sleep(0.3)

        return run

    one, one_outcome = in_thread(request("calendar:read", "calendar:write"))
    two, two_outcome = in_thread(request("calendar:write", "calendar:read"))
    one.join(30)
    two.join(30)

    assert "error" not in one_outcome
    assert "error" not in two_outcome
    assert tenant.count("token") == 2
    assert not [r for r in caplog.records if "cache unavailable" in r.getMessage()]

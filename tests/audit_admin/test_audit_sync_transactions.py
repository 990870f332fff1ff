"""``AUDIT_SYNC`` inside a transaction the caller opened: no audit row is rolled back with it.

A sync write on the caller's connection would be a savepoint in the caller's transaction, so a
view doing ``with transaction.atomic(): request.auth.on_behalf_of(API)`` would lose the denied
exchange's row when the failure rolls the block back. These tests use real transactions
(``django_db(transaction=True)``, no test-case block around them) and real rollbacks, on
whichever database ``DATABASE_URL`` names (SQLite and PostgreSQL in CI).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from django_auth0_obo import audit, audit_buffer
from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.testing.config import MCP_API
from tests.exchange_support import configure, user_token

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN_API = "https://unknown.example.com"


class Rollback(Exception):
    """Raised to leave an ``atomic`` block the way a failing view does."""


@pytest.fixture
def sync(settings: Any) -> None:
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": MCP_API, "AUDIT_SYNC": True}


def row(subject: str = "auth0|alice") -> dict[str, Any]:
    return {"kind": "request", "subject": subject, "outcome": "denied", "reason": "test"}


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    """An ``atomic`` block left by an exception, so it really rolls back."""
    with contextlib.suppress(Rollback), transaction.atomic():
        yield
        raise Rollback


def flush_on_another_thread() -> int:
    """What the writer thread does: flush on its own connection."""
    written: list[int] = []

    def flush() -> None:
        try:
            written.append(audit_buffer.flush())
        finally:
            connection.close()

    thread = threading.Thread(target=flush)
    thread.start()
    thread.join(30)
    return written[0]


def test_a_failed_exchange_in_a_rolled_back_transaction_keeps_its_audit_row(auth0_tenant, settings):
    configure(auth0_tenant, settings)  # AUDIT_SYNC on, as the stand-in's settings
    with pytest.raises(TokenExchangeError), transaction.atomic():
        get_token_on_behalf_of(user_token(auth0_tenant), UNKNOWN_API)
    assert len(audit_buffer.buffer) == 1  # queued, not written on the rolled-back connection
    assert audit.flush() == 1
    assert DelegationEvent.objects.filter(kind="exchange", outcome="denied").count() == 1


def test_a_sync_row_added_inside_a_rolled_back_block_is_written_after_it(sync):
    with rolled_back():
        audit_buffer.add(row())
    assert audit.flush() == 1
    assert list(DelegationEvent.objects.values_list("subject", flat=True)) == ["auth0|alice"]


def test_the_writer_writes_a_deferred_row_outside_the_still_open_transaction(sync):
    with rolled_back():
        audit_buffer.add(row())
        assert flush_on_another_thread() == 1
    assert DelegationEvent.objects.count() == 1
    assert len(audit_buffer.buffer) == 0


def test_the_next_sync_row_in_the_same_transaction_does_not_flush_the_first_into_it(sync):
    with rolled_back():
        audit_buffer.add(row("auth0|alice"))
        audit_buffer.add(row("auth0|bob"))
        assert len(audit_buffer.buffer) == 2
    assert audit.flush() == 2
    assert sorted(DelegationEvent.objects.values_list("subject", flat=True)) == [
        "auth0|alice",
        "auth0|bob",
    ]


def test_an_explicit_flush_inside_a_transaction_leaves_buffered_rows_for_later(settings):
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": MCP_API, "AUDIT_SYNC": False}
    audit_buffer.add(row())
    with rolled_back():
        assert audit.flush() == 0
    assert audit.flush() == 1
    assert DelegationEvent.objects.count() == 1


def test_a_sync_row_added_with_autocommit_off_survives_the_rollback(sync):
    transaction.set_autocommit(False)
    try:
        audit_buffer.add(row())
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert audit.flush() == 1
    assert DelegationEvent.objects.count() == 1


def test_outside_any_transaction_a_sync_row_is_written_before_add_returns(sync):
    audit_buffer.add(row())
    assert len(audit_buffer.buffer) == 0
    assert DelegationEvent.objects.count() == 1

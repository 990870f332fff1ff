"""Single flight within a process: identical concurrent exchanges make one call to the tenant."""

from __future__ import annotations

import pytest

from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import ExchangedToken
from tests.exchange_support import DOWNSTREAM, configure, run_together, user_token

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 50


@pytest.fixture
def tenant(auth0_tenant, settings):
    return configure(auth0_tenant, settings, AUDIT="off")


def test_fifty_threads_asking_for_the_same_token_make_one_call(tenant):
    subject = user_token(tenant)
    tenant.inject_fault("token", status=None, delay=0.5)  # a slow tenant: everyone piles up

    results = run_together(
        THREADS, lambda _: get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    )

    assert tenant.count("token") == 1
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["access_token"] for r in results}) == 1
    assert ExchangedToken.objects.count() == 1


def test_fifty_threads_over_five_scopes_make_five_calls(tenant):
    subject = user_token(tenant)
    tenant.inject_fault("token", status=None, delay=0.3, times=5)
    scopes = ["calendar:read", "calendar:write", "calendar:read calendar:write", None, ""]
    audiences = [DOWNSTREAM] * 5

    results = run_together(
        THREADS,
        lambda i: get_token_on_behalf_of(subject, audiences[i % 5], scopes[i % 5]),
    )

    assert all(isinstance(r, dict) for r in results), results
    # "" and None are the same request (no scope): four distinct keys.
    assert tenant.count("token") == 4
    for group in range(5):
        assert len({r["access_token"] for r in results[group::5]}) == 1


def test_a_failure_is_shared_by_the_waiting_threads_and_not_cached(tenant):
    subject = user_token(tenant)
    tenant.inject_fault(
        "token",
        status=403,
        body={"error": "access_denied", "error_description": "No."},
        delay=2.0,  # a thread joining after the leader failed would ask again: leave it no room
    )

    results = run_together(
        THREADS, lambda _: get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    )

    assert tenant.count("token") == 1
    assert all(isinstance(r, TokenExchangeError) for r in results)
    assert {(r.error, r.status_code) for r in results} == {("access_denied", 403)}
    assert not ExchangedToken.objects.exists()
    assert get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")["access_token"]

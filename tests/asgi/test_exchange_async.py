"""The async exchange twins: same results and cache as the sync functions, one call to the
tenant for concurrent coroutines and for threads each running their own event loop (processes:
``tests/exchange/test_exchange_processes.py``), no ``SynchronousOnlyOperation``, and the loop
stays free while the tenant is slow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.db import connection

from django_auth0_obo import signals
from django_auth0_obo.exchange import (
    aget_access_token_for_connection,
    aget_token_by_exchange_profile,
    aget_token_on_behalf_of,
    get_token_on_behalf_of,
)
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.verification import verify
from django_auth0_obo.verified import VerifiedToken
from tests.exchange_support import DOWNSTREAM, THIS_API, configure, run_together, user_token

pytestmark = pytest.mark.django_db(transaction=True)

EXTERNAL = "urn:example:legacy-session"
#: Threads, each with its own event loop, asking at once.
THREADS = 8


@pytest.fixture
def tenant(auth0_tenant, settings):
    configure(auth0_tenant, settings)
    yield auth0_tenant
    connection.close()


def test_the_async_twin_shares_the_cache_with_the_sync_function(tenant):
    subject = user_token(tenant)
    first = asyncio.run(aget_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read"))
    again = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    assert again["access_token"] == first["access_token"]
    assert tenant.count("token") == 1
    assert ExchangedToken.objects.count() == 1


def test_aon_behalf_of_exchanges_a_verified_token_from_inside_a_running_loop(tenant):
    """The ORM is never touched on the loop's thread: no SynchronousOnlyOperation."""
    token = user_token(tenant)
    verified = verify(f"Bearer {token}", method="GET", url=f"{THIS_API}/")
    assert isinstance(verified, VerifiedToken)

    async def tool() -> str:
        result = await verified.aon_behalf_of(DOWNSTREAM, "calendar:read")
        return result["access_token"]

    issued = asyncio.run(tool())
    assert tenant.verify(issued, audience=DOWNSTREAM)["sub"] == "auth0|user123"


def test_concurrent_coroutines_make_one_call_while_the_loop_keeps_serving(tenant):
    subject = user_token(tenant)
    tenant.inject_fault("token", status=None, delay=1.0)

    async def scenario() -> tuple[list[str], list[str]]:
        exchanges = [
            asyncio.create_task(aget_token_on_behalf_of(subject, DOWNSTREAM)) for _ in range(5)
        ]
        served: list[str] = []

        async def other_request() -> None:
            await asyncio.sleep(0.01)
            served.append("served" if not any(t.done() for t in exchanges) else "late")

        await asyncio.gather(other_request(), *exchanges)
        return served, [t.result()["access_token"] for t in exchanges]

    served, issued = asyncio.run(scenario())
    assert served == ["served"]
    assert len(set(issued)) == 1
    assert tenant.count("token") == 1


def test_threads_each_running_an_event_loop_make_one_call(tenant):
    """Threads with their own loops (ASGI servers' worker threads, ``asyncio.run`` in sync code)
    meet in the same single flight as coroutines do; half come through
    ``VerifiedToken.aon_behalf_of``, half pass the raw token: the same exchange either way."""
    subject = user_token(tenant)
    verified = verify(f"Bearer {subject}", method="GET", url=f"{THIS_API}/")
    assert isinstance(verified, VerifiedToken)
    cache_hits: list[bool] = []

    def exchanged(sender: Any, **kwargs: Any) -> None:
        cache_hits.append(kwargs["cache_hit"])

    signals.token_exchanged.connect(exchanged)
    tenant.inject_fault("token", status=None, delay=1.0)  # a slow tenant: everyone piles up

    def in_its_own_loop(index: int) -> Any:
        if index % 2:
            return asyncio.run(verified.aon_behalf_of(DOWNSTREAM, "calendar:read"))
        return asyncio.run(aget_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read"))

    try:
        results = run_together(THREADS, in_its_own_loop)
    finally:
        signals.token_exchanged.disconnect(exchanged)

    assert all(isinstance(r, dict) for r in results), results
    assert len({r["access_token"] for r in results}) == 1
    assert tenant.count("token") == 1
    assert sorted(cache_hits) == [False] + [True] * (THREADS - 1)
    assert ExchangedToken.objects.count() == 1


def test_the_profile_and_token_vault_twins_work_and_cache(tenant):
    tenant.add_exchange_profile(EXTERNAL, lambda form: {"sub": "legacy|42"})
    subject = user_token(tenant)

    async def calls() -> list[str]:
        profile = await aget_token_by_exchange_profile(
            "legacy-session-1", EXTERNAL, audience=DOWNSTREAM
        )
        vault = await aget_access_token_for_connection("google-oauth2", subject)
        vault_again = await aget_access_token_for_connection("google-oauth2", subject)
        assert vault_again["access_token"] == vault["access_token"]
        return [profile["access_token"], vault["access_token"]]

    profile_token, vault_token = asyncio.run(calls())
    assert tenant.verify(profile_token, audience=DOWNSTREAM)["sub"] == "legacy|42"
    assert vault_token in tenant.federated_tokens
    assert tenant.count("token") == 2

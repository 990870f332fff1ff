"""Async views under a real uvicorn server (one worker, one event loop, real sockets).

While one request's exchange waits on a slow tenant, other requests on the same worker — a plain
async view, an ``averify`` view and an adrf view behind ``AllowedActors`` — are all answered
before it. Authentication, permissions and the audit work in adrf async views and nothing raises
``SynchronousOnlyOperation``. Order of completion is asserted, never durations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.db import connection

from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.testing import LocalTenant
from tests.exchange_support import THIS_API, configure, user_token
from tests.uvicorn_support import bind, serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> Iterator[LocalTenant]:
    settings.ROOT_URLCONF = "tests.async_urls"
    configure(auth0_tenant, settings, AUDIT="all")
    yield auth0_tenant
    connection.close()


@pytest.fixture
def server(tenant: LocalTenant) -> Iterator[str]:
    """uvicorn serving Django's ASGI handler on a free loopback port, in a thread.

    The handler is built directly: ``get_asgi_application()`` would run ``django.setup()`` again
    and bind the project's logging handler to this test's captured (soon closed) stderr."""
    with serve(ASGIHandler(), bind(), lifespan="off") as url:
        yield url


def _wait_for(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition never became true")


def test_other_requests_are_served_while_an_exchange_waits_on_a_slow_tenant(
    tenant: LocalTenant, server: str
) -> None:
    user = user_token(tenant)
    agent = tenant.mint(audience=THIS_API, act={"sub": "agent-ok"}, azp="agent-ok")
    refused = tenant.mint(audience=THIS_API, act={"sub": "agent-bad"}, azp="agent-bad")
    with httpx.Client() as warm:  # keys in memory, so only the exchange is slow
        assert warm.get(f"{server}/async/whoami", headers=_bearer(user)).status_code == 200
    tenant.inject_fault("token", status=None, delay=5.0)

    async def scenario() -> list[tuple[str, int]]:
        finished: list[tuple[str, int]] = []
        async with httpx.AsyncClient(base_url=server, timeout=30) as client:

            async def call(name: str, path: str, token: str | None = None) -> None:
                response = await client.get(path, headers=_bearer(token) if token else {})
                finished.append((name, response.status_code))

            slow = asyncio.create_task(call("exchange", "/async/calendar", user))
            await asyncio.to_thread(_wait_for, lambda: tenant.count("token") == 1)
            await asyncio.gather(
                call("ping", "/async/ping"),
                call("averify", "/async/whoami", user),
                call("allowed actor", "/async/actors", agent),
                call("refused actor", "/async/actors", refused),
                call("no token", "/async/whoami"),
            )
            await slow
        return finished

    finished = asyncio.run(scenario())
    assert finished[-1] == ("exchange", 200)
    assert sorted(finished[:-1]) == [
        ("allowed actor", 200),
        ("averify", 200),
        ("no token", 401),
        ("ping", 200),
        ("refused actor", 403),
    ]
    assert tenant.count("token") == 1
    outcomes = {(event.current_actor, event.outcome) for event in DelegationEvent.objects.all()}
    assert ("agent-ok", "allowed") in outcomes
    assert ("agent-bad", "denied") in outcomes


def test_an_adrf_view_refuses_missing_scopes_with_insufficient_scope(
    tenant: LocalTenant, server: str
) -> None:
    token = user_token(tenant, scope="other")
    response = httpx.get(f"{server}/async/calendar", headers=_bearer(token))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert tenant.count("token") == 0


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

"""``HttpxOnBehalfOf``: the ``httpx`` twin of :class:`~django_auth0_obo.downstream.OnBehalfOf`.

Same rules (:class:`~django_auth0_obo.downstream.DownstreamCall`), for ``httpx.Client`` and, the
reason it exists, ``httpx.AsyncClient``: under ``async`` the exchange (a database read on a cache
hit, an HTTPS call on a miss) runs in a worker thread (``workers.run_in_worker``), so the event
loop is never blocked and Django's async-safety guard is never tripped. Requires ``httpx``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx

from django_auth0_obo.downstream import DownstreamAuth, DownstreamCall
from django_auth0_obo.workers import run_in_worker


class HttpxOnBehalfOf(DownstreamAuth, httpx.Auth):
    """``httpx`` auth: call ``audience``'s API as the user behind ``token``."""

    requires_request_body = True

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        call = self.new_call(str(request.url))
        call.exchange()
        while True:
            _apply(call, request)
            response = yield request
            step = _next_step(call, response)
            if step is None:
                return
            if step == "refresh":
                call.refresh()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        call = await run_in_worker(self.new_call, str(request.url))
        await run_in_worker(call.exchange)
        while True:
            await run_in_worker(_apply, call, request)
            response = yield request
            step = _next_step(call, response)
            if step is None:
                return
            if step == "refresh":
                await run_in_worker(call.refresh)


def _next_step(call: DownstreamCall, response: httpx.Response) -> str | None:
    """What to do after ``response``; judged by where it came from, which after redirects
    (followed inside the flow) may be another origin than the request's."""
    return call.next_step(str(response.request.url), response.status_code, response.headers)


def _apply(call: DownstreamCall, request: httpx.Request) -> None:
    request.headers.update(call.headers(request.method, str(request.url)))

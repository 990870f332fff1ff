"""``HttpxOnBehalfOf``: the ``httpx`` twin of :class:`~django_auth0_obo.downstream.OnBehalfOf`.

Same rules (:class:`~django_auth0_obo.downstream.DownstreamCall`), for ``httpx.Client`` and, the
reason it exists, ``httpx.AsyncClient``: under ``async`` the exchange (a database read on a cache
hit, an HTTPS call on a miss) runs through ``sync_to_async``, so the event loop is never blocked
and Django's async-safety guard is never tripped. Requires the optional ``httpx`` package.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx
from asgiref.sync import sync_to_async

from django_auth0_obo.downstream import DownstreamAuth, DownstreamCall


class HttpxOnBehalfOf(DownstreamAuth, httpx.Auth):
    """``httpx`` auth: call ``audience``'s API as the user behind ``token``."""

    requires_request_body = True

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        call = self.new_call()
        call.exchange()
        while True:
            _apply(call, request)
            response = yield request
            step = call.next_step(str(request.url), response.status_code, response.headers)
            if step is None:
                return
            if step == "refresh":
                call.refresh()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        call = await sync_to_async(self.new_call)()
        await sync_to_async(call.exchange)()
        while True:
            await sync_to_async(_apply)(call, request)
            response = yield request
            step = call.next_step(str(request.url), response.status_code, response.headers)
            if step is None:
                return
            if step == "refresh":
                await sync_to_async(call.refresh)()


def _apply(call: DownstreamCall, request: httpx.Request) -> None:
    request.headers.update(call.headers(request.method, str(request.url)))

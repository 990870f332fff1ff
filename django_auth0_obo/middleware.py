"""``DPoPNonceMiddleware``: hands DPoP clients the nonce to use (RFC 9449 §9), when DPOP_NONCE.

DRF builds a 401's headers from the exception alone, so the ``DPoP-Nonce`` a client needs to
retry after ``use_dpop_nonce`` has to be added on the way out. Add this middleware to
``MIDDLEWARE`` when ``DPOP_NONCE = True`` (system check ``auth0_obo.E038`` insists): every 401,
and every response to a request that carried a DPoP proof, gets a fresh ``DPoP-Nonce``, so
clients keep a valid nonce without ever seeing a second 401. Works under WSGI and ASGI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from django_auth0_obo import dpop_nonce


class DPoPNonceMiddleware:
    """Adds ``DPoP-Nonce`` to 401s and to answers to DPoP requests while DPOP_NONCE is on."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self.add_nonce(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        return self.add_nonce(request, response)

    @staticmethod
    def add_nonce(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Set a fresh ``DPoP-Nonce`` where a DPoP client can use it."""
        nonce = dpop_nonce.header_for(response.status_code, "HTTP_DPOP" in request.META)
        if nonce is not None:
            response.headers[dpop_nonce.HEADER] = nonce
        return response


__all__ = ["DPoPNonceMiddleware"]

"""Example views: what an MCP server (or any DRF API) protected by django_auth0_obo looks like.

* ``WhoAmIView``: echoes what was verified about the caller.
* ``McpCalendarView`` (audience ``https://mcp.example.com``): an MCP-server tool. It verifies the
  user's token, exchanges it on the user's behalf for the calendar API (cached) and calls that API
  over real HTTP — never passing the user's own token on.
* ``CalendarEventsView`` (audience ``https://calendar-api.example.com``): the downstream API. Only
  the MCP server's client may act there (``AllowedActors``), with ``calendar:read``
  (``HasScopes``); every call lands in the delegation audit trail.
"""

from __future__ import annotations

import contextvars
from typing import Any

import requests
from django.conf import settings
from django.dispatch import receiver
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo import signals
from django_auth0_obo.conf import obo_settings
from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.permissions import AllowedActors, HasScopes

MCP_API = "https://mcp.example.com"
CALENDAR_API = "https://calendar-api.example.com"
CALENDAR_PATH = "/api/calendar/events"
#: The MCP server's client id in the local stand-in tenant.
DEFAULT_MCP_CLIENT_ID = "mcp-server-client"

_last_exchange: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "example_last_exchange", default=None
)


@receiver(signals.token_exchanged, dispatch_uid="testproject.api.views.exchange")
def _remember_exchange(sender: Any, **kwargs: Any) -> None:
    """Keep the last exchange's metadata (cache hit or miss) for the response; no token."""
    _last_exchange.set({"cache_hit": kwargs.get("cache_hit"), "audience": kwargs.get("audience")})


class WhoAmIView(APIView):
    """Echo what was verified about the caller (no token, only claims that identify)."""

    def get(self, request: Request) -> Response:
        token = request.auth
        return Response(
            {
                "sub": request.user.sub,
                "scheme": token.scheme,
                "scopes": sorted(token.scopes),
                "current_actor": token.current_actor,
                "delegation_chain": token.delegation_chain,
                "jkt": token.jkt,
            }
        )

    post = get


class McpCalendarView(APIView):
    """``POST /mcp/calendar``: read the user's calendar through the downstream API."""

    audience = MCP_API

    def post(self, request: Request) -> Response:
        _last_exchange.set(None)
        try:
            result = request.auth.on_behalf_of(CALENDAR_API, "calendar:read")
        except TokenExchangeError as error:
            return Response(
                {"error": error.error, "detail": error.error_description or error.error},
                status=status.HTTP_502_BAD_GATEWAY,
            )
        exchange = _last_exchange.get() or {}
        url = calendar_url(request)
        token_type = result.get("token_type") or "Bearer"
        headers = {"Authorization": f"{token_type} {result['access_token']}"}
        if token_type.lower() == "dpop":
            from django_auth0_obo.dpop import make_proof

            headers["DPoP"] = make_proof("GET", url, access_token=result["access_token"])
        try:
            downstream = requests.get(url, headers=headers, timeout=10)
        except requests.RequestException as error:
            return Response(
                {"error": "calendar_unreachable", "detail": type(error).__name__},
                status=status.HTTP_502_BAD_GATEWAY,
            )
        try:
            body: Any = downstream.json()
        except ValueError:
            body = {"detail": "non-JSON answer"}
        return Response(
            {
                "sub": request.user.sub,
                "exchange": {
                    "audience": CALENDAR_API,
                    "scope": result.get("scope"),
                    "token_type": token_type,
                    "expires_in": result.get("expires_in"),
                    "cache_hit": exchange.get("cache_hit"),
                },
                "calendar_status": downstream.status_code,
                "calendar": body,
            },
            status=status.HTTP_200_OK if downstream.ok else status.HTTP_502_BAD_GATEWAY,
        )


def calendar_url(request: Request) -> str:
    """``DOWNSTREAM_CALENDAR_URL`` (a base URL) + the events path; default: this same server."""
    base = getattr(settings, "DOWNSTREAM_CALENDAR_URL", None)
    if base:
        return base.rstrip("/") + CALENDAR_PATH
    return request.build_absolute_uri(CALENDAR_PATH)


class CalendarEventsView(APIView):
    """``GET /api/calendar/events``: fake events, and who acted for whom to read them."""

    audience = CALENDAR_API
    permission_classes = [AllowedActors, HasScopes]
    required_scopes = ["calendar:read"]

    def get_allowed_actors(self) -> list[str]:
        return [obo_settings.CLIENT_ID or DEFAULT_MCP_CLIENT_ID]

    def get(self, request: Request) -> Response:
        token = request.auth
        return Response(
            {
                "events": [
                    {"title": "Stand-up", "start": "2026-11-23T09:00:00Z"},
                    {"title": "Design review", "start": "2026-11-23T14:00:00Z"},
                ],
                "for_user": token.sub,
                "acted_by": token.current_actor,
                "delegation_chain": token.delegation_chain,
                "scopes": sorted(token.scopes),
            }
        )

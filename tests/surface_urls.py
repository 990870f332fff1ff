"""Test-only URLs for issue 11: a view that exchanges, and the stand-in's proxy handling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

CALENDAR_API = "https://calendar-api.example.com"
MCP_API = "https://mcp.example.com"


class ExchangeView(APIView):
    """An MCP tool: exchanges the caller's token for the calendar API (never returns it)."""

    audience = MCP_API

    def post(self, request: Request) -> Response:
        result = request.auth.on_behalf_of(CALENDAR_API, "calendar:read")
        return Response({"token_type": result.get("token_type"), "scope": result.get("scope")})


class EchoView(APIView):
    """Any audience the settings accept; echoes the subject."""

    def get(self, request: Request) -> Response:
        return Response({"sub": request.user.sub, "scheme": request.auth.scheme})

    post = get


class TrustedProxyMiddleware:
    """What a project behind one trusted proxy does: REMOTE_ADDR from X-Forwarded-For."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            request.META["REMOTE_ADDR"] = forwarded.split(",")[-1].strip()
        return self.get_response(request)


urlpatterns = [
    path("exchange", ExchangeView.as_view()),
    path("echo", EchoView.as_view()),
]


class CalendarProxyView(APIView):
    """An MCP tool calling the downstream calendar API as the user, with ``OnBehalfOf``."""

    audience = MCP_API

    def get(self, request: Request) -> Response:
        import requests
        from django.conf import settings

        from django_auth0_obo.exchange import OnBehalfOf

        downstream = requests.get(
            settings.SURFACE_DOWNSTREAM_URL,
            auth=OnBehalfOf(request.auth, CALENDAR_API, "calendar:read"),
            verify=settings.SURFACE_DOWNSTREAM_CA,
            timeout=10,
        )
        return Response(downstream.json(), status=downstream.status_code)


urlpatterns.append(path("calendar", CalendarProxyView.as_view()))


def domains_for_request(request: HttpRequest) -> list[str]:
    """A DOMAINS resolver: the tenant domain named by the request's ``X-Tenant`` header."""
    from django.conf import settings

    return [settings.SURFACE_TENANT_DOMAINS[request.META.get("HTTP_X_TENANT", "a")]]


NOT_CALLABLE = "a string"

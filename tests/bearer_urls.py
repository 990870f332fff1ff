"""Test-only URLs: views that narrow the accepted audience (``@pytest.mark.urls``)."""

from __future__ import annotations

from django.urls import path
from rest_framework.authentication import BasicAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo.authentication import Auth0Authentication

API = "https://api.example.com"
CALENDAR_API = "https://calendar-api.example.com"
MCP_API = "https://mcp.example.com"


class ClaimsView(APIView):
    """Accepts any audience the settings accept; echoes what was verified (never the token)."""

    def get(self, request: Request) -> Response:
        token = request.auth
        return Response(
            {
                "sub": request.user.sub,
                "scheme": token.scheme,
                "aud": token.claims["aud"],
                "scopes": sorted(token.scopes),
                "current_actor": token.current_actor,
                "delegation_chain": token.delegation_chain,
                "jkt": token.jkt,
            }
        )

    post = get


class CalendarView(ClaimsView):
    """One API of several hosted by the project: only tokens for the calendar API."""

    audience = CALENDAR_API


class ApiListView(ClaimsView):
    audience = [API]


class McpHookView(ClaimsView):
    """Narrows through the ``get_audience`` hook instead of the attribute."""

    def get_audience(self) -> str:
        return MCP_API


class BasicFallbackView(APIView):
    """Tokens first, then HTTP Basic: a request that is not ours must reach the next class."""

    authentication_classes = [Auth0Authentication, BasicAuthentication]

    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username()})


urlpatterns = [
    path("claims", ClaimsView.as_view()),
    path("calendar", CalendarView.as_view()),
    path("api-only", ApiListView.as_view()),
    path("mcp", McpHookView.as_view()),
    path("basic-fallback", BasicFallbackView.as_view()),
]

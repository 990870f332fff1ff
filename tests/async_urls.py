"""Async views served by a real uvicorn in ``test_async_uvicorn`` (not a test module).

* ``/async/calendar``: an adrf view (``Auth0Authentication`` + ``HasScopes``) whose async handler
  awaits ``request.auth.aon_behalf_of``: the slow exchange.
* ``/async/actors``: an adrf view behind ``AllowedActors`` (audited).
* ``/async/whoami``: a plain Django async view verifying with ``averify``.
* ``/async/ping``: a plain Django async view touching nothing of ours.
"""

from __future__ import annotations

from typing import Any

from adrf.views import APIView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response

from django_auth0_obo import averify
from django_auth0_obo.authentication import Auth0Authentication
from django_auth0_obo.exceptions import AuthenticationError
from django_auth0_obo.permissions import AllowedActors, HasScopes
from tests.exchange_support import DOWNSTREAM, THIS_API


class CalendarView(APIView):
    authentication_classes = [Auth0Authentication]
    permission_classes = [HasScopes]
    required_scopes = ["mcp:read"]
    audience = THIS_API

    async def get(self, request: Request) -> Response:
        result = await request.auth.aon_behalf_of(DOWNSTREAM, "calendar:read")
        return Response({"sub": request.user.sub, "expires_at": result["expires_at"]})


class ActorsView(APIView):
    authentication_classes = [Auth0Authentication]
    permission_classes = [AllowedActors]
    allowed_actors = ["agent-ok"]
    audience = THIS_API

    async def get(self, request: Request) -> Response:
        return Response({"actor": request.auth.current_actor})


async def whoami(request: HttpRequest) -> HttpResponse:
    try:
        verified = await averify(
            request.headers.get("Authorization"),
            method=request.method or "GET",
            url=request.build_absolute_uri(),
            dpop=request.headers.get("DPoP"),
            audience=THIS_API,
        )
    except AuthenticationError as error:
        response = JsonResponse({"error": error.error}, status=error.status_code)
        response["WWW-Authenticate"] = error.www_authenticate or "Bearer"
        return response
    return JsonResponse({"sub": verified.sub})


async def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("pong")


urlpatterns: list[Any] = [
    path("", include("django_auth0_obo.urls")),
    path("async/calendar", CalendarView.as_view()),
    path("async/actors", ActorsView.as_view()),
    path("async/whoami", whoami),
    path("async/ping", ping),
]

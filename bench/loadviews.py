"""The views ``make loadtest`` drives; every one renders the same small JSON with DRF.

* ``/bench/open``: no authentication (the ceiling);
* ``/bench/me``: ``Auth0Authentication`` + ``IsAuthenticated`` (Bearer or DPoP);
* ``/bench/obo``: the same, and the view calls ``request.auth.on_behalf_of`` for the calendar
  API each request (served from the exchanged-token cache after the first).
"""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

CALENDAR_API = "https://calendar-api.example.com"


class OpenView(APIView):
    authentication_classes = ()
    permission_classes = ()
    renderer_classes = (JSONRenderer,)

    def get(self, request: Request) -> Response:
        return Response({"sub": None})


class MeView(APIView):
    permission_classes = (IsAuthenticated,)
    renderer_classes = (JSONRenderer,)

    def get(self, request: Request) -> Response:
        return Response({"sub": request.user.sub})


class OboView(APIView):
    permission_classes = (IsAuthenticated,)
    renderer_classes = (JSONRenderer,)

    def get(self, request: Request) -> Response:
        result = request.auth.on_behalf_of(CALENDAR_API, "calendar:read")
        return Response({"sub": request.user.sub, "scope": result.get("scope")})


urlpatterns = [
    path("bench/open", OpenView.as_view()),
    path("bench/me", MeView.as_view()),
    path("bench/obo", OboView.as_view()),
]

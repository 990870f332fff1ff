"""Views behind ``Auth0Authentication`` that drf-spectacular documents without an error or a
warning of its own (a serializer each), for ``spectacular --fail-on-warn`` in
``tests/project/test_spectacular.py``: any warning left is about the authentication."""

from __future__ import annotations

from django.urls import path
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from django_auth0_obo.authentication import Auth0Authentication
from django_auth0_obo.permissions import HasScopes


class EventSerializer(serializers.Serializer[dict[str, str]]):
    title = serializers.CharField()


class EventsView(GenericAPIView[dict[str, str]]):
    authentication_classes = [Auth0Authentication]
    permission_classes = [IsAuthenticated, HasScopes]
    required_scopes = ["calendar:read"]
    serializer_class = EventSerializer

    def get(self, request: Request) -> Response:
        return Response(self.get_serializer({"title": "standup"}).data)


urlpatterns = [path("api/events", EventsView.as_view())]

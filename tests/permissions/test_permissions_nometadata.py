"""URLs without ``django_auth0_obo.urls``: challenges must then carry no ``resource_metadata``."""

from django.urls import path

from tests.permissions.test_permissions import ActorsView, ScopesView

urlpatterns = [
    path("actors", ActorsView.as_view()),
    path("scopes", ScopesView.as_view()),
]

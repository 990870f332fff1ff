"""``path("", include("django_auth0_obo.urls"))``: the RFC 9728 protected resource metadata."""

from django.urls import path

from django_auth0_obo.metadata import protected_resource_metadata

app_name = "django_auth0_obo"

urlpatterns = [
    path(
        ".well-known/oauth-protected-resource",
        protected_resource_metadata,
        name="oauth-protected-resource",
    ),
    path(
        ".well-known/oauth-protected-resource/<path:resource_path>",
        protected_resource_metadata,
        name="oauth-protected-resource-path",
    ),
]

"""App configuration: registers system checks and optional integrations."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoAuth0OboConfig(AppConfig):
    name = "django_auth0_obo"
    verbose_name = "Auth0 on-behalf-of"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_auth0_obo import checks  # noqa: F401  (registers the checks)

"""App configuration: registers system checks and optional integrations."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoAuth0OboConfig(AppConfig):
    name = "django_auth0_obo"
    verbose_name = "Auth0 on-behalf-of"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the checks; connects the audit trail's receivers.
        from django_auth0_obo import audit, checks, view_checks  # noqa: F401

"""Admin for the app's models: read-only views that never show a token."""

from django_auth0_obo.admin import delegation_events, exchanged_tokens  # noqa: F401

"""Template filters of the delegation overview page."""

from __future__ import annotations

from django import template

from django_auth0_obo.overview_svg import clean

register = template.Library()


@register.filter
def label(value: object, limit: int = 120) -> str:
    """A claim value fit for the page: no control characters, capped (autoescape does the rest)."""
    return clean(str(value), int(limit))

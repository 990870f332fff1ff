"""System checks over the project's DRF views (ids ``auth0_obo.E020`` to ``E024``).

``HasScopes`` refuses at request time on a view without required scopes; this finds such views
in the URLconf at ``manage.py check`` time, before a request does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.urls import URLPattern, URLResolver, get_resolver

from django_auth0_obo.permissions import HasScopes


@register(Tags.security, Tags.urls, "auth0_obo")
def check_required_scopes(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E020: a DRF view using ``HasScopes`` (alone or composed) names no required scopes."""
    errors: list[CheckMessage] = []
    seen: set[type] = set()
    for view_class in drf_views(get_resolver().url_patterns):
        if view_class in seen:
            continue
        seen.add(view_class)
        uses = any(_uses_has_scopes(p) for p in getattr(view_class, "permission_classes", ()))
        if uses and not _declares_scopes(view_class):
            name = f"{view_class.__module__}.{view_class.__name__}"  # @api_view sets __name__
            errors.append(
                Error(
                    f"{name} uses HasScopes but has no required_scopes; every request to it "
                    "would be refused with ImproperlyConfigured.",
                    hint="Set required_scopes on the view, or define get_required_scopes().",
                    obj=view_class,
                    id="auth0_obo.E020",
                )
            )
    return errors


def drf_views(patterns: Iterable[Any]) -> Iterator[type]:
    """Every DRF view class reachable from ``patterns`` (``as_view()`` and ``@api_view``)."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from drf_views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if isinstance(view_class, type) and hasattr(view_class, "permission_classes"):
                yield view_class


def _uses_has_scopes(permission: Any) -> bool:
    """True for ``HasScopes`` and compositions holding it (DRF's ``&``, ``|``, ``~``)."""
    if isinstance(permission, type) and issubclass(permission, HasScopes):
        return True
    return any(
        _uses_has_scopes(getattr(permission, name))
        for name in ("op1_class", "op2_class")
        if hasattr(permission, name)
    )


def _declares_scopes(view_class: type) -> bool:
    if callable(getattr(view_class, "get_required_scopes", None)):
        return True  # decided per request; nothing to judge here
    return bool(getattr(view_class, "required_scopes", None))

"""DRF permissions for delegated Auth0 tokens: who may act (``AllowedActors``) and with what
scopes (``HasScopes``).

Both return False rather than raise, so they compose with DRF's ``&``, ``|`` and ``~`` like any
permission. When one of them refused and the view's overall decision is a refusal, the view's
``permission_denied`` turns DRF's generic ``PermissionDenied`` into ours: a 403 whose body
carries a machine-readable ``code``, an ``insufficient_scope`` challenge for scopes, an audit row
with the reason, and the ``actor_denied`` signal (see :mod:`django_auth0_obo.instrument`). If a
composition lets the request through, nothing of that happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from django_auth0_obo.api_exceptions import (
    ACTOR_AZP_MISMATCH,
    ACTOR_NOT_ALLOWED,
    ACTOR_REASONS,
    DELEGATION_TOO_DEEP,
    DIRECT_TOKEN_NOT_ALLOWED,
    INSUFFICIENT_SCOPE,
    NOT_AN_AUTH0_TOKEN,
)
from django_auth0_obo.conf import as_tuple, obo_settings, view_option
from django_auth0_obo.instrument import Refusal, record_refusal, refusal_exception
from django_auth0_obo.verified import VerifiedToken

__all__ = [
    "ACTOR_AZP_MISMATCH",
    "ACTOR_NOT_ALLOWED",
    "ACTOR_REASONS",
    "DELEGATION_TOO_DEEP",
    "DIRECT_TOKEN_NOT_ALLOWED",
    "INSUFFICIENT_SCOPE",
    "NOT_AN_AUTH0_TOKEN",
    "AllowedActors",
    "HasScopes",
    "Refusal",
    "refusal_exception",
]


class _Auth0Permission(BasePermission):
    message: Any = None
    code: str | None = None

    def refuse(self, request: Request, view: Any, refusal: Refusal) -> bool:
        """Remember the refusal for ``permission_denied`` and return False."""
        self.message = {"detail": refusal.message, "code": refusal.code}
        self.code = refusal.code
        sender = AllowedActors if isinstance(self, AllowedActors) else type(self)
        record_refusal(request, view, replace(refusal, sender=sender))
        return False


class AllowedActors(_Auth0Permission):
    """The current actor (outermost ``act.sub``) must be allowed to call this view.

    The allow-list is the view's ``allowed_actors`` (or ``get_allowed_actors()``), else the
    ``ALLOWED_ACTORS`` setting. Nested actors are earlier hops, kept for audit only (RFC 8693
    §4.1). A token without ``act`` passes only when the view sets ``allow_direct_tokens = True``.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, VerifiedToken):
            return self.refuse(
                request,
                view,
                Refusal(NOT_AN_AUTH0_TOKEN, "The request was not authenticated by an Auth0 token."),
            )
        actor = token.current_actor
        if actor is None:
            if getattr(view, "allow_direct_tokens", False):
                return True
            return self.refuse(
                request,
                view,
                Refusal(DIRECT_TOKEN_NOT_ALLOWED, "This API only accepts delegated tokens."),
            )
        actor_client = token.actor_client_id
        allowed = self.get_allowed_actors(view)
        if actor not in allowed and (actor_client is None or actor_client not in allowed):
            return self.refuse(
                request,
                view,
                Refusal(ACTOR_NOT_ALLOWED, f"Actor {actor!r} may not call this API.", actor),
            )
        if obo_settings.REQUIRE_ACTOR_AZP_MATCH and not _client_matches(token):
            return self.refuse(
                request,
                view,
                Refusal(
                    ACTOR_AZP_MISMATCH,
                    f"Actor {actor!r} is not the token's authorized party.",
                    actor,
                ),
            )
        depth = len(token.delegation_chain)
        if depth > obo_settings.MAX_DELEGATION_DEPTH:
            return self.refuse(
                request,
                view,
                Refusal(
                    DELEGATION_TOO_DEEP,
                    f"Delegation chain of actor {actor!r} is {depth} hops long; "
                    f"at most {obo_settings.MAX_DELEGATION_DEPTH} are accepted.",
                    actor,
                ),
            )
        return True

    def get_allowed_actors(self, view: Any) -> frozenset[str]:
        """Return the view's allow-list, else the ``ALLOWED_ACTORS`` setting (empty: nobody).

        It may name actors (``act.sub``, e.g. ``agt_…`` agents) or their clients
        (``act.client_id``)."""
        actors = view_option(view, "allowed_actors")
        if actors is None:
            actors = obo_settings.ALLOWED_ACTORS
        return frozenset(as_tuple(actors))


class HasScopes(_Auth0Permission):
    """Every scope in the view's ``required_scopes`` (or ``get_required_scopes()``) is granted,
    by the ``scope`` claim or by Auth0 RBAC ``permissions``.

    A view with no required scopes raises ``ImproperlyConfigured`` (as django-oauth-toolkit's
    ``TokenHasScope`` does): a forgotten or misspelt attribute must never grant everything. The
    ``auth0_obo.E020`` system check finds such views in the URLconf before a request does.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        required = self.get_required_scopes(view)
        token = request.auth
        granted = token.scopes if isinstance(token, VerifiedToken) else frozenset()
        missing = [s for s in required if s not in granted]
        if not missing:
            return True
        return self.refuse(
            request,
            view,
            Refusal(
                INSUFFICIENT_SCOPE,
                f"Missing scope(s): {' '.join(missing)}.",
                token.current_actor if isinstance(token, VerifiedToken) else None,
                scopes=tuple(required),
            ),
        )

    def get_required_scopes(self, view: Any) -> tuple[str, ...]:
        """The view's required scopes; none at all is a configuration error, never a grant."""
        scopes = view_option(view, "required_scopes")
        required = tuple(scope for item in as_tuple(scopes) for scope in item.split())
        if not required:
            raise ImproperlyConfigured(
                f"{_view_name(view)} uses HasScopes but has no required_scopes: set "
                "required_scopes (or define get_required_scopes()) on the view."
            )
        return required


def _client_matches(token: VerifiedToken) -> bool:
    """The actor/client consistency check (Auth0's OBO guide).

    The token's client is ``azp`` (Auth0's profile), else ``client_id`` (the RFC 9068 profile);
    a token naming neither is compared on neither. The actor's client is ``act.client_id`` when
    present (an agent acting through its client), else the actor itself; a present but
    malformed ``act.client_id`` never matches.
    """
    claims = token.claims
    if "azp" in claims:
        client = claims["azp"]
    elif "client_id" in claims:
        client = claims["client_id"]
    else:
        return True
    act = claims.get("act")
    if isinstance(act, Mapping) and "client_id" in act:
        return token.actor_client_id is not None and client == token.actor_client_id
    return client == token.current_actor


def _view_name(view: Any) -> str:
    cls = view if isinstance(view, type) else type(view)
    return f"{cls.__module__}.{cls.__name__}"  # @api_view sets __name__, not __qualname__

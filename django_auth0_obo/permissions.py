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

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from django_auth0_obo.api_exceptions import (
    ACTOR_AZP_MISMATCH,
    ACTOR_NOT_ALLOWED,
    ACTOR_REASONS,
    CLAIM_MISMATCH,
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
    "CLAIM_MISMATCH",
    "DELEGATION_TOO_DEEP",
    "DIRECT_TOKEN_NOT_ALLOWED",
    "INSUFFICIENT_SCOPE",
    "NOT_AN_AUTH0_TOKEN",
    "AllowedActors",
    "ClaimCheck",
    "ClaimEquals",
    "ClaimIncludes",
    "HasAnyScope",
    "HasScopes",
    "Refusal",
    "claim_equals",
    "claim_includes",
    "refusal_exception",
    "scope_includes_any",
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

    def refuse_foreign_credentials(self, request: Request, view: Any) -> bool:
        """Refuse a request that another authenticator let in: we cannot decide, so we deny."""
        message = "The request was not authenticated by an Auth0 token."
        return self.refuse(request, view, Refusal(NOT_AN_AUTH0_TOKEN, message))


class AllowedActors(_Auth0Permission):
    """The current actor (outermost ``act.sub``) must be allowed to call this view.

    The allow-list is the view's ``allowed_actors`` (or ``get_allowed_actors()``), else the
    ``ALLOWED_ACTORS`` setting. Nested actors are earlier hops, kept for audit only (RFC 8693
    §4.1). A token without ``act`` passes only when the view sets ``allow_direct_tokens = True``.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, VerifiedToken):
            return self.refuse_foreign_credentials(request, view)
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
    client: object
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


# -- Claim checks: any-of scopes and claim values ---------------------------------------------

#: JSON primitives a claim may be compared with (as express-oauth2-jwt-bearer allows).
ClaimValue = str | int | float | bool | None


class HasAnyScope(_Auth0Permission):
    """At least one of the view's ``any_scopes`` (or ``get_any_scopes()``) is granted.

    A view with ``HasAnyScope`` and no scopes listed is a configuration error; it never grants.
    """

    any_scopes: tuple[str, ...] = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        wanted = self.get_any_scopes(view)
        if not wanted:
            raise ImproperlyConfigured(
                f"{_view_name(view)} uses HasAnyScope but lists no any_scopes."
            )
        token = request.auth
        granted = token.scopes if isinstance(token, VerifiedToken) else frozenset()
        if granted.intersection(wanted):
            return True
        return self.refuse(
            request,
            view,
            Refusal(
                INSUFFICIENT_SCOPE,
                f"One of these scopes is needed: {' '.join(wanted)}.",
                token.current_actor if isinstance(token, VerifiedToken) else None,
                scopes=wanted,
            ),
        )

    def get_any_scopes(self, view: Any) -> tuple[str, ...]:
        """The permission's own ``any_scopes`` (factory), else the view's attribute or hook."""
        if self.any_scopes:
            return tuple(self.any_scopes)
        scopes = view_option(view, "any_scopes")
        return tuple(scope for item in as_tuple(scopes) for scope in item.split())


def scope_includes_any(*scopes: str) -> type[HasAnyScope]:
    """A ``HasAnyScope`` that needs one of ``scopes``, whatever the view says."""
    if not scopes or not all(isinstance(s, str) and s for s in scopes):
        raise ValueError("scope_includes_any needs at least one scope name.")
    return type("HasAnyScopeOf", (HasAnyScope,), {"any_scopes": tuple(scopes)})


class ClaimCheck(_Auth0Permission):
    """Base of the claim permissions: ``check(claims)`` decides; anything unexpected denies."""

    claim: str = ""
    description: str = "a claim check"

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, VerifiedToken):
            return self.refuse_foreign_credentials(request, view)
        if self.claim in token.claims and self.check(token.claims[self.claim]):
            return True
        return self.refuse(
            request,
            view,
            Refusal(
                CLAIM_MISMATCH,
                f"The token's {self.claim!r} claim does not satisfy {self.description}.",
                token.current_actor,
            ),
        )

    def check(self, value: Any) -> bool:  # pragma: no cover - subclasses decide
        return False


class ClaimEquals(ClaimCheck):
    expected: ClaimValue = None

    def check(self, value: Any) -> bool:
        return _same(value, self.expected)


class ClaimIncludes(ClaimCheck):
    expected: tuple[ClaimValue, ...] = ()

    def check(self, value: Any) -> bool:
        if isinstance(value, str):
            items: list[Any] = [item for item in value.split(" ") if item]
        elif isinstance(value, list):
            items = value
        else:
            return False  # a number, object or null is not a collection of values
        return all(any(_same(item, wanted) for item in items) for wanted in self.expected)


def claim_equals(name: str, value: ClaimValue) -> type[ClaimEquals]:
    """A permission: the claim ``name`` is present and equals ``value`` (same JSON type)."""
    _check_claim_args(name, (value,))
    return type(
        "ClaimEquals",
        (ClaimEquals,),
        {"claim": name, "expected": value, "description": f"== {value!r}"},
    )


def claim_includes(name: str, *values: ClaimValue) -> type[ClaimIncludes]:
    """A permission: the claim ``name`` (a list, or a space-separated string) contains every
    one of ``values``."""
    if not values:
        raise ValueError("claim_includes needs at least one value.")
    _check_claim_args(name, values)
    return type(
        "ClaimIncludes",
        (ClaimIncludes,),
        {"claim": name, "expected": tuple(values), "description": f"includes {list(values)!r}"},
    )


def _check_claim_args(name: Any, values: Iterable[Any]) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("The claim name must be a non-empty string.")
    for value in values:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError("Claim values must be JSON primitives (str, number, bool, None).")


def _same(value: Any, expected: ClaimValue) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` equals ``1.0``, strings compare exactly."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(value) is type(expected) and value == expected
    if expected is None:
        return value is None
    if isinstance(expected, int | float):
        return isinstance(value, int | float) and value == expected
    return isinstance(value, str) and value == expected

"""DRF permissions for delegated Auth0 tokens: who may act (``AllowedActors``) and with what
scopes (``HasScopes``).

Both return False rather than raise, so they compose with DRF's ``&``, ``|`` and ``~`` like any
permission. When one of them refused and the view's overall decision is a refusal, the view's
``permission_denied`` (wrapped on the view instance the first time one of ours refuses) turns
DRF's generic ``PermissionDenied`` into ours: a 403 whose body carries a machine-readable ``code``,
an ``insufficient_scope`` challenge for scopes, an audit row with the reason, and the
``actor_denied`` signal. If a composition lets the request through, nothing of that happens.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from django_auth0_obo import audit, challenges, observability, signals
from django_auth0_obo.conf import obo_settings
from django_auth0_obo.exceptions import AuthenticationError
from django_auth0_obo.verified import VerifiedToken

#: Attribute on the Django ``HttpRequest`` listing this request's refusals, oldest first.
REFUSALS_ATTRIBUTE = "auth0_obo_refusals"
#: Marker set on a view instance once its ``permission_denied`` is wrapped.
HOOKED_ATTRIBUTE = "_auth0_obo_permission_denied_hooked"

ACTOR_NOT_ALLOWED = "actor_not_allowed"
DIRECT_TOKEN_NOT_ALLOWED = "direct_token_not_allowed"
ACTOR_AZP_MISMATCH = "actor_azp_mismatch"
DELEGATION_TOO_DEEP = "delegation_too_deep"
NOT_AN_AUTH0_TOKEN = "not_an_auth0_token"
INSUFFICIENT_SCOPE = "insufficient_scope"

#: Reasons that concern the actor (they send ``actor_denied``).
ACTOR_REASONS = frozenset(
    {ACTOR_NOT_ALLOWED, DIRECT_TOKEN_NOT_ALLOWED, ACTOR_AZP_MISMATCH, DELEGATION_TOO_DEEP}
)


@dataclass(frozen=True)
class Refusal:
    """Why one of our permissions said no: a stable code, a message (never a token)."""

    code: str
    message: str
    actor: str | None = None
    scopes: tuple[str, ...] = ()


class Auth0PermissionDenied(exceptions.PermissionDenied):
    """403 whose body is ``{"detail": message, "code": code}``."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(detail={"detail": refusal.message, "code": refusal.code})


class InsufficientScope(Auth0PermissionDenied):
    """403 with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`` (RFC 6750)."""

    def __init__(self, refusal: Refusal, auth_header: str) -> None:
        super().__init__(refusal)
        self.auth_header = auth_header


class _Auth0Permission(BasePermission):
    message: Any = None
    code: str | None = None

    def refuse(self, request: Request, view: Any, refusal: Refusal) -> bool:
        """Remember the refusal for ``permission_denied`` and return False."""
        self.message = {"detail": refusal.message, "code": refusal.code}
        self.code = refusal.code
        refusals = getattr(request._request, REFUSALS_ATTRIBUTE, None)
        if refusals is None:
            refusals = []
            setattr(request._request, REFUSALS_ATTRIBUTE, refusals)
        refusals.append(refusal)
        _hook_permission_denied(view)
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
        if actor not in self.get_allowed_actors(view):
            return self.refuse(
                request,
                view,
                Refusal(ACTOR_NOT_ALLOWED, f"Actor {actor!r} may not call this API.", actor),
            )
        azp = token.claims.get("azp")
        if obo_settings.REQUIRE_ACTOR_AZP_MATCH and azp is not None and azp != actor:
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
        """Return the view's allow-list, else the ``ALLOWED_ACTORS`` setting (empty: nobody)."""
        getter = getattr(view, "get_allowed_actors", None)
        actors = getter() if callable(getter) else getattr(view, "allowed_actors", None)
        if actors is None:
            actors = obo_settings.ALLOWED_ACTORS
        return _as_set(actors)


class HasScopes(_Auth0Permission):
    """Every scope in the view's ``required_scopes`` (or ``get_required_scopes()``) is granted,
    by the ``scope`` claim or by Auth0 RBAC ``permissions``."""

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
        getter = getattr(view, "get_required_scopes", None)
        scopes = getter() if callable(getter) else getattr(view, "required_scopes", None)
        if scopes is None:
            return ()
        if isinstance(scopes, str):
            return tuple(scopes.split())
        return tuple(scopes)


def _as_set(values: Iterable[str] | str | None) -> frozenset[str]:
    if values is None:
        return frozenset()
    if isinstance(values, str):
        return frozenset({values})
    return frozenset(values)


def _hook_permission_denied(view: Any) -> None:
    """Wrap ``view.permission_denied`` on this view instance (once), see the module docstring."""
    if view is None or getattr(view, HOOKED_ATTRIBUTE, False):
        return
    original = getattr(view, "permission_denied", None)
    if original is None:
        return

    @functools.wraps(original)
    def permission_denied(request: Request, message: Any = None, code: str | None = None) -> Any:
        if request.authenticators and not request.successful_authenticator:
            return original(request, message=message, code=code)
        refusal = _pick_refusal(request, code)
        if refusal is None:
            return original(request, message=message, code=code)
        raise refusal_exception(request, refusal)

    view.permission_denied = permission_denied
    setattr(view, HOOKED_ATTRIBUTE, True)


def _pick_refusal(request: Request, code: str | None) -> Refusal | None:
    refusals: list[Refusal] = getattr(request._request, REFUSALS_ATTRIBUTE, None) or []
    for refusal in reversed(refusals):
        if refusal.code == code:
            return refusal
    return refusals[0] if refusals else None


def refusal_exception(request: Request, refusal: Refusal) -> Auth0PermissionDenied:
    """Record the refusal (audit, signal) and return the exception to raise."""
    audit.mark_denied(request, refusal.code)
    observability.permission_refused(request, refusal.code, refusal.actor, refusal.scopes)
    if refusal.code in ACTOR_REASONS:
        signals.actor_denied.send(
            sender=AllowedActors, request=request, actor=refusal.actor, reason=refusal.code
        )
    if refusal.code == INSUFFICIENT_SCOPE:
        header = challenges.authenticate_header(
            realm=obo_settings.REALM,
            dpop_mode=_challenge_mode(request),
            dpop_algorithms=obo_settings.DPOP_ALGORITHMS,
            error=InsufficientScopeError(refusal.message),
            scope=" ".join(refusal.scopes),
            resource_metadata=challenges.resource_metadata_url(request),
        )
        return InsufficientScope(refusal, header)
    return Auth0PermissionDenied(refusal)


def _challenge_mode(request: Request) -> str:
    """Challenge only the scheme the client used, so ``error=`` lands on it."""
    token = request.auth
    if isinstance(token, VerifiedToken):
        return "required" if token.scheme == "DPoP" else "disabled"
    mode: str = obo_settings.DPOP_MODE
    return mode


class InsufficientScopeError(AuthenticationError):
    """RFC 6750 §3.1 ``insufficient_scope``, for the challenge builder."""

    error = INSUFFICIENT_SCOPE
    status_code = 403
    default_description = "The token lacks a required scope."


# -- Claim checks: any-of scopes and claim values ---------------------------------------------

CLAIM_MISMATCH = "claim_mismatch"

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
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                f"{type(view).__name__} uses HasAnyScope but lists no any_scopes."
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
        getter = getattr(view, "get_any_scopes", None)
        scopes = getter() if callable(getter) else getattr(view, "any_scopes", None)
        if scopes is None:
            return ()
        return tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)


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
            return self.refuse(
                request,
                view,
                Refusal(NOT_AN_AUTH0_TOKEN, "The request was not authenticated by an Auth0 token."),
            )
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
            items: list[Any] = value.split()
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

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

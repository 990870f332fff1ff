"""How a DRF view's permission decision is observed: one function installs both hooks.

A request's path through the app, in order:

1. ``Auth0Authentication`` verifies the credentials and calls :func:`request_authenticated`,
   which starts the request's audit record (:func:`audit.begin`) and, unless AUDIT is off,
   :func:`instrument`\\ s the view. (The ``token_verified`` signal is sent too, for the
   project's own receivers only.)
2. DRF runs the view's ``check_permissions``. Our permissions that say no call
   :func:`record_refusal` (which instruments the view too, for views behind another
   authenticator) and return False, so they compose with ``&``, ``|`` and ``~``.
3. If the overall decision is a refusal, DRF calls ``permission_denied``: :func:`permission_denied`
   turns it into our 403 (:func:`refusal_exception`: a stable ``code``, an ``insufficient_scope``
   challenge, the audit reason, the ``actor_denied`` signal).
4. When ``check_permissions`` returns or raises, :func:`check_permissions` tells the audit the
   decision (:func:`audit.decided`), which writes the row.

:func:`instrument` wraps the two methods on the view *instance* (once; DRF builds one per request).
Teams that prefer no instance patching inherit :class:`Auth0ViewMixin` instead, which runs the
same two functions from ordinary method overrides; :func:`instrument` leaves such views alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from rest_framework.request import Request

from django_auth0_obo import audit, challenges, observability, signals
from django_auth0_obo.api_exceptions import (
    ACTOR_REASONS,
    INSUFFICIENT_SCOPE,
    Auth0PermissionDenied,
    InsufficientScope,
)
from django_auth0_obo.verified import VerifiedToken

#: Attribute on the Django ``HttpRequest`` listing this request's refusals, oldest first.
REFUSALS_ATTRIBUTE = "auth0_obo_refusals"
#: Marker set on a view instance once :func:`instrument` wrapped it.
INSTRUMENTED_ATTRIBUTE = "_auth0_obo_instrumented"


@dataclass(frozen=True)
class Refusal:
    """Why one of our permissions said no: a stable code, a message (never a token)."""

    code: str
    message: str
    actor: str | None = None
    scopes: tuple[str, ...] = ()
    #: The permission class that refused: the sender of ``actor_denied``.
    sender: Any = None


def request_authenticated(request: Request, token: VerifiedToken) -> None:
    """Step 1: start the audit record and, unless AUDIT is off, instrument the view so it hears
    the decision (see the module docstring). With ``AUDIT = "off"`` there is nothing to tell:
    a refusal of ours instruments the view itself (:func:`record_refusal`)."""
    if audit.begin(request, token):
        instrument(_view_of(request))


def record_refusal(request: Request, view: Any, refusal: Refusal) -> None:
    """Step 2: remember ``refusal`` for :func:`permission_denied`."""
    django_request = request._request
    refusals: list[Refusal] | None = getattr(django_request, REFUSALS_ATTRIBUTE, None)
    if refusals is None:
        refusals = []
        setattr(django_request, REFUSALS_ATTRIBUTE, refusals)
    refusals.append(refusal)
    instrument(view)


def instrument(view: Any) -> None:
    """Wrap ``check_permissions`` and ``permission_denied`` on this view instance, once."""
    if view is None or isinstance(view, Auth0ViewMixin):
        return
    if getattr(view, INSTRUMENTED_ATTRIBUTE, False):
        return
    original_check = getattr(view, "check_permissions", None)
    original_denied = getattr(view, "permission_denied", None)
    if original_check is None or original_denied is None:
        return
    # Partials, not ``functools.wraps`` closures: this runs on every authenticated request and
    # copying the wrapped methods' metadata cost more than the rest of the instrumentation.
    view.check_permissions = functools.partial(check_permissions, original_check)
    view.permission_denied = functools.partial(_denied, original_denied)
    setattr(view, INSTRUMENTED_ATTRIBUTE, True)


def _denied(original: Any, request: Request, message: Any = None, code: str | None = None) -> Any:
    """``permission_denied`` with DRF's keyword defaults, for the partial above."""
    return permission_denied(original, request, message, code)


def check_permissions(original: Any, request: Request) -> None:
    """Step 4: run DRF's check, then tell the audit the decision, allowed or refused."""
    try:
        original(request)
    except Exception as error:
        audit.decided(request, error)
        raise
    audit.decided(request)


def permission_denied(original: Any, request: Request, message: Any, code: str | None) -> Any:
    """Step 3: raise our refusal when one of ours refused; else DRF's own answer."""
    if request.authenticators and not request.successful_authenticator:
        return original(request, message=message, code=code)
    refusal = _pick_refusal(request, message, code)
    if refusal is None:
        return original(request, message=message, code=code)
    raise refusal_exception(request, refusal)


def refusal_exception(request: Request, refusal: Refusal) -> Auth0PermissionDenied:
    """Record the refusal (audit reason, signal) and return the exception to raise."""
    audit.mark_denied(request, refusal.code)
    observability.permission_refused(request, refusal.code, refusal.actor, refusal.scopes)
    if refusal.code in ACTOR_REASONS:
        signals.actor_denied.send(
            sender=refusal.sender, request=request, actor=refusal.actor, reason=refusal.code
        )
    if refusal.code == INSUFFICIENT_SCOPE:
        header = challenges.for_request(
            request,
            error=INSUFFICIENT_SCOPE,
            error_description=refusal.message,
            scope=" ".join(refusal.scopes),
            dpop_mode=_used_scheme_mode(request),
        )
        return InsufficientScope(refusal.message, header)
    return Auth0PermissionDenied(refusal.code, refusal.message)


class Auth0ViewMixin:
    """Explicit instrumentation for a DRF view, instead of patching its instance::

        class CalendarView(Auth0ViewMixin, APIView):
            permission_classes = [AllowedActors, HasScopes]

    Put it before ``APIView`` (or any view class) in the bases.
    """

    def check_permissions(self, request: Request) -> None:
        check_permissions(super().check_permissions, request)  # type: ignore[misc]

    def permission_denied(self, request: Request, message: Any = None, code: Any = None) -> Any:
        return permission_denied(super().permission_denied, request, message, code)  # type: ignore[misc]


def _view_of(request: Request) -> Any:
    return (getattr(request, "parser_context", None) or {}).get("view")


def _pick_refusal(request: Request, message: Any, code: str | None) -> Refusal | None:
    """The refusal of ours that DRF is reporting, or None when another permission refused.

    DRF passes the refusing permission's ``message`` and ``code``: ours set both, so a code
    names our refusal. An ``&`` / ``|`` / ``~`` composite has neither, so its refusal is ours
    (the first one recorded). A permission that has either but no code of ours is another
    app's, refusing after ours were overridden (``[AllowedActors | IsAuthenticated, DenyAll]``):
    DRF's own answer is the right one, not a refusal the ``|`` already set aside."""
    refusals: list[Refusal] = getattr(request._request, REFUSALS_ATTRIBUTE, None) or []
    for refusal in reversed(refusals):
        if refusal.code == code:
            return refusal
    if not refusals or message is not None or code is not None:
        return None
    return refusals[0]


def _used_scheme_mode(request: Request) -> str | None:
    """Challenge only the scheme the client used, so ``error=`` lands on it."""
    token = request.auth
    if isinstance(token, VerifiedToken):
        return "required" if token.scheme == "DPoP" else "disabled"
    return None

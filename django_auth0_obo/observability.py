"""What operators see: log lines with structured ``extra=`` fields, and the refusal signals.

Loggers (children of ``django_auth0_obo``, so configuring that one configures all):

- ``django_auth0_obo.auth``: every rejected token or proof — INFO ``auth0_obo.token_rejected``
  with ``error`` (RFC code), ``reason`` (the fixed description), ``scheme``, ``status_code``,
  ``path``.
- ``django_auth0_obo.exchange``: every exchange — DEBUG for a cache hit, INFO for a miss (a call
  to the tenant), WARNING for a failure; ``extra``: ``grant``, ``audience``, ``cache_hit``,
  ``error``, ``status_code``.
- ``django_auth0_obo.permissions``: actor and scope refusals — INFO with ``reason``, ``actor``,
  ``required_scopes``, ``path``.

Never a token, a proof or a secret: only RFC codes, fixed descriptions, claims that name parties
(``sub`` is not logged either) and request paths without query strings. Library code never
configures logging; route these loggers where you want them (see the README's "Observability").
The ``extra`` keys are prefixed ``auth0_obo_`` so they cannot clash with ``LogRecord`` fields.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django_auth0_obo import signals

if TYPE_CHECKING:
    from django_auth0_obo.exceptions import AuthenticationError, TokenExchangeError

auth_logger = logging.getLogger("django_auth0_obo.auth")
exchange_logger = logging.getLogger("django_auth0_obo.exchange")
permissions_logger = logging.getLogger("django_auth0_obo.permissions")


def _path(request: Any) -> str:
    django_request = getattr(request, "_request", request)
    return str(getattr(django_request, "path", "") or "")


def token_rejected(sender: type, request: Any, error: AuthenticationError) -> None:
    """A request's credentials were refused: log it and send ``signals.token_rejected``."""
    auth_logger.info(
        "Rejected %s credentials: %s",
        error.error,
        error.description,
        extra={
            "auth0_obo_event": "token_rejected",
            "auth0_obo_error": error.error,
            "auth0_obo_reason": error.description,
            "auth0_obo_scheme": error.scheme,
            "auth0_obo_status_code": error.status_code,
            "auth0_obo_path": _path(request),
        },
    )
    signals.token_rejected.send(
        sender=sender,
        request=request,
        error=error.error,
        description=error.description,
        status_code=error.status_code,
    )


def permission_refused(
    request: Any, reason: str, actor: str | None, required_scopes: tuple[str, ...]
) -> None:
    """An actor or scope refusal: log it; a scope refusal also sends ``signals.scope_denied``."""
    permissions_logger.info(
        "Refused %s for actor %s on %s",
        reason,
        actor or "-",
        _path(request),
        extra={
            "auth0_obo_event": "permission_denied",
            "auth0_obo_reason": reason,
            "auth0_obo_actor": actor,
            "auth0_obo_required_scopes": list(required_scopes),
            "auth0_obo_path": _path(request),
        },
    )
    if reason == "insufficient_scope":
        signals.scope_denied.send(
            sender=type(None),
            request=request,
            actor=actor,
            required_scopes=required_scopes,
        )


def exchange_done(grant: str, audience: str | None, cache_hit: bool) -> None:
    """An exchange answered, from the cache (DEBUG) or by the tenant (INFO)."""
    exchange_logger.log(
        logging.DEBUG if cache_hit else logging.INFO,
        "Token exchange (%s) for %s: %s",
        grant,
        audience or "the default audience",
        "cache hit" if cache_hit else "issued by the tenant",
        extra={
            "auth0_obo_event": "exchange_hit" if cache_hit else "exchange_miss",
            "auth0_obo_grant": grant,
            "auth0_obo_audience": audience,
            "auth0_obo_cache_hit": cache_hit,
        },
    )


def exchange_failed(
    grant: str,
    audience: str | None,
    error: TokenExchangeError,
    *,
    level: int = logging.WARNING,
    hint: str = "",
) -> None:
    """An exchange failed (the tenant refused, or could not be reached); ``level`` and ``hint``
    come from how the failure is answered (``exchange_errors.describe``)."""
    exchange_logger.log(
        level,
        "Token exchange (%s) for %s failed: %s (HTTP %s): %s",
        grant,
        audience or "the default audience",
        error.error,
        error.status_code,
        hint,
        extra={
            "auth0_obo_event": "exchange_failed",
            "auth0_obo_grant": grant,
            "auth0_obo_audience": audience,
            "auth0_obo_error": error.error,
            "auth0_obo_status_code": error.status_code,
        },
    )

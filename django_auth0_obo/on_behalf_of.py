"""Token exchange with the tenant: on-behalf-of, Custom Token Exchange and Token Vault.

The implementation behind the public :mod:`django_auth0_obo.exchange` (which re-exports these
names with ``OnBehalfOf``). It lives here so :mod:`.downstream` and :mod:`.verified` can use it
without an import cycle: this module needs no ``VerifiedToken`` class, only the
:class:`VerifiedSubject` shape it has, so nothing here imports them back.

Each function validates its arguments and the client configuration before anything is sent,
serves identical requests from the encrypted ``ExchangedToken`` cache (one call to the tenant per
user token, target and scope set, across threads and processes: :mod:`.token_cache`), and talks to
``/oauth/token`` through :mod:`.token_endpoint` (client authentication, DPoP, bounded retries).

Failures raise :class:`~django_auth0_obo.exceptions.TokenExchangeError` with the tenant's own
``error``/``error_description``; a DRF view may let it escape (see ``api_exceptions``). Signals
``token_exchanged`` and ``exchange_failed`` report every call, cache hits included.

DPoP-bound subject tokens: the tenant does not re-check an incoming token's ``cnf.jkt`` binding
when exchanging it, so whoever holds a stolen bound token could exchange it for an unbound one.
The only safe input is therefore a :class:`VerifiedToken` whose DPoP proof was verified by
``Auth0Authentication``; a raw string that carries ``cnf.jkt`` is refused.

Error reports: every entry point is a ``sensitive_variables`` frame. Django's error report hides
the locals of every frame below the nearest such frame (the form with the subject token, the
client secret or assertion, the issued token, down to ``requests``' own frames); the async twins
are registered the way Django handles coroutines (by file and line).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict, runtime_checkable

from django.views.decorators.debug import sensitive_variables

from django_auth0_obo import (
    domains,
    exchange_errors,
    jose,
    observability,
    signals,
    token_endpoint,
)
from django_auth0_obo.act import get_delegation_chain
from django_auth0_obo.exceptions import InvalidActClaim, TokenExchangeError, UnverifiedBoundToken
from django_auth0_obo.exchange_params import (
    check_optional,
    check_required,
    check_subject_token,
    clean_extra,
    clean_scope,
)
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.token_cache import (
    IssuedToken,
    cache_key,
    get_or_fetch,
    normalize_scope,
    revoke_tokens,
)
from django_auth0_obo.tokens import bound_jkt

__all__ = [
    "ConnectionTokenResult",
    "OnBehalfOfTokenResult",
    "TokenExchangeResult",
    "VerifiedSubject",
    "forget_token_on_behalf_of",
    "get_access_token_for_connection",
    "get_token_by_exchange_profile",
    "get_token_on_behalf_of",
]

logger = logging.getLogger("django_auth0_obo")


@runtime_checkable
class VerifiedSubject(Protocol):
    """What exchange reads of a :class:`~django_auth0_obo.verified.VerifiedToken`
    (``request.auth``): the raw token, its verified claims, and what verification matched."""

    token: str
    claims: Mapping[str, Any]
    scheme: str
    jkt: str | None
    audience: str
    bound_jkt: str | None


GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_FEDERATED_CONNECTION = (
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
)
TOKEN_TYPE_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
TOKEN_TYPE_FEDERATED = "http://auth0.com/oauth/token-type/federated-connection-access-token"

#: Names of the three grants in cache rows, signals and the admin.
ON_BEHALF_OF, CUSTOM_TOKEN_EXCHANGE, TOKEN_VAULT = (
    "on_behalf_of",
    "custom_token_exchange",
    "token_vault",
)


class OnBehalfOfTokenResult(TypedDict):
    """What ``get_token_on_behalf_of`` returns; never an ID or refresh token."""

    access_token: str
    expires_in: int
    expires_at: int
    scope: NotRequired[str]
    token_type: NotRequired[str]
    issued_token_type: NotRequired[str]


class ConnectionTokenResult(OnBehalfOfTokenResult):
    """What ``get_access_token_for_connection`` returns: a third-party API's access token."""


class TokenExchangeResult(OnBehalfOfTokenResult):
    """What ``get_token_by_exchange_profile`` returns; ID and refresh tokens only on a miss."""

    id_token: NotRequired[str]
    refresh_token: NotRequired[str]


@dataclass(frozen=True)
class _Subject:
    """The token being exchanged, with what we know of its claims."""

    token: str = field(repr=False)
    #: Verified claims (a VerifiedToken was given), else None.
    verified: Mapping[str, Any] | None
    #: Verified claims, or claims read without verification (metadata only), or {}.
    claims: Mapping[str, Any]
    #: The audience verification matched (a VerifiedToken was given), else None.
    audience: str | None = None

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def delegation_depth(self) -> int | None:
        """How many ``act`` levels the token already has; None when its ``act`` is malformed."""
        try:
            return len(get_delegation_chain(self.claims))
        except InvalidActClaim:
            return None

    @property
    def exp(self) -> int | None:
        exp = self.claims.get("exp")
        return int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None

    @property
    def domain(self) -> str:
        """The tenant domain to exchange at: the accepted one that issued this token."""
        return domains.exchange_domain(self.claims)


@dataclass
class _Exchange:
    """Everything one call needs: the form to send, how to key it, what to report."""

    grant: str
    sender: Callable[..., Any]
    subject: _Subject
    audience: str | None
    requested_scope: str | None
    form: dict[str, Any] = field(repr=False)
    key_parts: dict[str, Any] = field(repr=False)
    passthrough: tuple[str, ...] = ()
    connection: str | None = None


@sensitive_variables()
def get_token_on_behalf_of(
    access_token: str | VerifiedSubject, audience: str, scope: str | None = None
) -> OnBehalfOfTokenResult:
    """Exchange a user's access token for one to call ``audience`` as the same user (RFC 8693).

    ``access_token`` is ``request.auth`` (preferred) or a raw string. The result comes from the
    cache while it is valid for more than ``TOKEN_CACHE_REFRESH_MARGIN`` seconds and never outlives
    ``access_token`` itself.
    """
    subject = _subject(access_token, access_token_type=True)
    audience = check_required(audience, "audience")
    requested_scope = clean_scope(scope)
    form = _form(
        GRANT_TOKEN_EXCHANGE,
        subject,
        TOKEN_TYPE_ACCESS_TOKEN,
        requested_token_type=TOKEN_TYPE_ACCESS_TOKEN,
        audience=audience,
        scope=requested_scope,
    )
    exchange = _Exchange(
        grant=ON_BEHALF_OF,
        sender=get_token_on_behalf_of,
        subject=subject,
        audience=audience,
        requested_scope=requested_scope,
        form=form,
        key_parts=_key_parts(ON_BEHALF_OF, subject, audience, requested_scope),
    )
    return _run(exchange)  # type: ignore[return-value]


@sensitive_variables()
def forget_token_on_behalf_of(
    access_token: str | VerifiedSubject, audience: str, scope: str | None = None
) -> bool:
    """Drop the cached result :func:`get_token_on_behalf_of` would serve for these arguments,
    so the next call asks the tenant again (e.g. the downstream API refused the token).

    Returns whether a cached result was there. The key is built by the same code as the
    exchange's own, so it is exactly the row that call would serve."""
    subject = _subject(access_token, access_token_type=True)
    audience = check_required(audience, "audience")
    key = cache_key(**_key_parts(ON_BEHALF_OF, subject, audience, clean_scope(scope)))
    return revoke_tokens(ExchangedToken.objects.filter(key=key)) > 0  # memos forget it too


@sensitive_variables()
def get_token_by_exchange_profile(
    subject_token: str | VerifiedSubject,
    subject_token_type: str,
    audience: str | None = None,
    scope: str | None = None,
    requested_token_type: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TokenExchangeResult:
    """Auth0 Custom Token Exchange: the tenant's profile for ``subject_token_type`` decides.

    ``extra`` adds form parameters under the SDK's rules (see :mod:`.exchange_params`). ID and
    refresh tokens the profile returns are handed back on the call that got them and never
    stored: a cached answer carries the access token only.
    """
    subject_token_type = check_required(subject_token_type, "subject_token_type")
    subject = _subject(
        subject_token, access_token_type=subject_token_type == TOKEN_TYPE_ACCESS_TOKEN
    )
    audience = check_optional(audience, "audience")
    requested_token_type = check_optional(requested_token_type, "requested_token_type")
    requested_scope = clean_scope(scope)
    params = clean_extra(extra)
    form = _form(
        GRANT_TOKEN_EXCHANGE,
        subject,
        subject_token_type,
        audience=audience,
        scope=requested_scope,
        requested_token_type=requested_token_type,
    )
    form.update(params)
    key_parts = _key_parts(CUSTOM_TOKEN_EXCHANGE, subject, audience, requested_scope)
    key_parts.update(
        subject_token_type=subject_token_type,
        requested_token_type=requested_token_type,
        extra=sorted(params.items()),
    )
    exchange = _Exchange(
        grant=CUSTOM_TOKEN_EXCHANGE,
        sender=get_token_by_exchange_profile,
        subject=subject,
        audience=audience,
        requested_scope=requested_scope,
        form=form,
        key_parts=key_parts,
        passthrough=("id_token", "refresh_token"),
    )
    return _run(exchange)  # type: ignore[return-value]


@sensitive_variables()
def get_access_token_for_connection(
    connection: str, access_token: str | VerifiedSubject, login_hint: str | None = None
) -> ConnectionTokenResult:
    """Auth0 Token Vault: the user's access token for a third-party API linked by ``connection``.

    For APIs the on-behalf-of profile cannot reach (Google, Slack, ...). Cached like the others.
    """
    connection = check_required(connection, "connection")
    subject = _subject(access_token, access_token_type=True)
    login_hint = check_optional(login_hint, "login_hint")
    form = _form(
        GRANT_FEDERATED_CONNECTION,
        subject,
        TOKEN_TYPE_ACCESS_TOKEN,
        requested_token_type=TOKEN_TYPE_FEDERATED,
        connection=connection,
        login_hint=login_hint,
    )
    key_parts = _key_parts(TOKEN_VAULT, subject, None, None)
    key_parts.update(connection=connection, login_hint=login_hint)
    exchange = _Exchange(
        grant=TOKEN_VAULT,
        sender=get_access_token_for_connection,
        subject=subject,
        audience=connection,
        requested_scope=None,
        form=form,
        key_parts=key_parts,
        connection=connection,
    )
    return _run(exchange)  # type: ignore[return-value]


# -- the common path ------------------------------------------------------------------------------


def _run(exchange: _Exchange) -> dict[str, Any]:
    key = cache_key(**exchange.key_parts)
    try:
        lookup = get_or_fetch(key, lambda: _fetch(exchange))
    except TokenExchangeError as exc:
        exc.add_context(
            grant=exchange.grant,
            connection=exchange.connection,
            delegation_depth=exchange.subject.delegation_depth,
        )
        failure = exchange_errors.describe(exc)
        observability.exchange_failed(
            exchange.grant,
            exchange.audience,
            exc,
            level=failure.log_level,
            hint="check this API's client configuration at the tenant"
            if failure.log_level >= logging.ERROR
            else failure.code,
        )
        signals.exchange_failed.send(
            sender=exchange.sender,
            grant=exchange.grant,
            subject=exchange.subject.sub,
            audience=exchange.audience,
            connection=exchange.connection,
            requested_scope=exchange.requested_scope,
            claims=exchange.subject.verified,
            subject_audience=exchange.subject.audience,
            error=exc.error,
            error_description=exc.error_description,
            status_code=exc.status_code,
        )
        raise
    issued = lookup.token
    observability.exchange_done(exchange.grant, exchange.audience, lookup.cache_hit)
    signals.token_exchanged.send(
        sender=exchange.sender,
        grant=exchange.grant,
        subject=exchange.subject.sub or issued.subject or None,
        audience=exchange.audience,
        connection=exchange.connection,
        requested_scope=exchange.requested_scope,
        granted_scope=issued.scope or None,
        cache_hit=lookup.cache_hit,
        token_type=issued.token_type or None,
        expires_at=issued.expires_at,
        claims=exchange.subject.verified,
        subject_audience=exchange.subject.audience,
    )
    return _result(issued, exchange.passthrough if not lookup.cache_hit else ())


def _fetch(exchange: _Exchange) -> IssuedToken:
    """Ask the tenant; turn its answer into what the cache keeps."""
    response = token_endpoint.post(exchange.form, domain=exchange.subject.domain)
    body = response.body
    expires_at = int(response.sent_at) + response.expires_in
    subject_exp = exchange.subject.exp
    issued_claims = jose.unverified_payload(response.access_token)
    token_type = _text(body.get("token_type"))
    if token_endpoint.uses_dpop() and token_type.lower() != "dpop":
        logger.warning(
            "DPOP_CLIENT_KEY is set but the tenant issued a %s token for %s: enable "
            "sender-constrained tokens on that API.",
            token_type or "non-DPoP",
            exchange.audience,
        )
    actor = issued_claims.get("act")
    return IssuedToken(
        access_token=response.access_token,
        expires_at=expires_at,
        cached_until=min(expires_at, subject_exp) if subject_exp else expires_at,
        grant=exchange.grant,
        audience=exchange.audience or _text(issued_claims.get("aud")),
        scope=_text(body.get("scope")) or (exchange.requested_scope or ""),
        token_type=token_type,
        issued_token_type=_text(body.get("issued_token_type")),
        subject=_text(issued_claims.get("sub")) or (exchange.subject.sub or ""),
        actor=_text(actor.get("sub")) if isinstance(actor, dict) else "",
        org_id=_text(issued_claims.get("org_id")) or _text(exchange.subject.claims.get("org_id")),
        passthrough={k: body[k] for k in exchange.passthrough if isinstance(body.get(k), str)},
    )


def _result(issued: IssuedToken, passthrough: tuple[str, ...]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "access_token": issued.access_token,
        "expires_in": max(0, issued.expires_at - int(time.time())),
        "expires_at": issued.expires_at,
    }
    for name in ("scope", "token_type", "issued_token_type"):
        value = getattr(issued, name)
        if value:
            result[name] = value
    for name in passthrough:
        if name in issued.passthrough:
            result[name] = issued.passthrough[name]
    return result


# -- inputs ---------------------------------------------------------------------------------------


#: Whether a type satisfies :class:`VerifiedSubject`, by type: a runtime protocol check walks
#: the protocol's members on every call (Python 3.11), a measurable share of a cache hit.
_subject_types: dict[type, bool] = {str: False}


def _is_verified_subject(token: object) -> bool:
    kind = type(token)
    known = _subject_types.get(kind)
    if known is None:
        known = _subject_types[kind] = isinstance(token, VerifiedSubject)
    return known


def _subject(token: str | VerifiedSubject, *, access_token_type: bool) -> _Subject:
    """Validate the token to exchange; refuse a DPoP-bound one whose proof nobody checked."""
    if _is_verified_subject(token):
        assert not isinstance(token, str)
        raw = check_subject_token(token.token, "access_token")
        claims = token.claims
        bound = token.bound_jkt
        if bound is not None and not (
            token.scheme == "DPoP"
            and token.jkt is not None
            and hmac.compare_digest(bound.encode(), token.jkt.encode())
        ):
            raise UnverifiedBoundToken(
                "This DPoP-bound token was not verified with a DPoP proof for its key: refusing "
                "to exchange it."
            )
        return _Subject(raw, claims, claims, token.audience)
    raw = check_subject_token(token, "access_token")
    claims = jose.unverified_payload(raw)
    if access_token_type and _certificate_bound(claims):
        raise UnverifiedBoundToken(
            "Refusing to exchange a certificate-bound token (cnf.x5t#S256): mTLS-bound tokens "
            "are not supported, and the tenant does not re-check the binding."
        )
    if access_token_type and bound_jkt(claims) is not None:
        raise UnverifiedBoundToken(
            "Refusing to exchange a raw DPoP-bound token: the tenant does not re-check the "
            "binding, so only a proof-verified request.auth (a VerifiedToken with scheme DPoP) "
            "may be exchanged."
        )
    return _Subject(raw, None, claims)


def _form(
    grant_type: str, subject: _Subject, subject_token_type: str, **fields: str | None
) -> dict[str, Any]:
    """A token-exchange form: the grant, the subject token and its type, then each other field
    only when it has a value (an empty field is never sent)."""
    form: dict[str, Any] = {
        "grant_type": grant_type,
        "subject_token": subject.token,
        "subject_token_type": subject_token_type,
    }
    form.update((name, value) for name, value in fields.items() if value)
    return form


def _key_parts(
    grant: str, subject: _Subject, audience: str | None, scope: str | None
) -> dict[str, Any]:
    """What a cached result is keyed by; reads the client credentials (so a missing one fails
    before any call to the tenant)."""
    client_id, _ = token_endpoint.client_credentials()
    return {
        "grant": grant,
        "subject_token": subject.token,
        "audience": audience,
        "scope": normalize_scope(scope),
        "client_id": client_id,
        "domain": subject.domain,
        "dpop_jkt": token_endpoint.client_jkt(),
    }


def _certificate_bound(claims: Mapping[str, Any]) -> bool:
    cnf = claims.get("cnf")
    return isinstance(cnf, Mapping) and "x5t#S256" in cnf


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# -- async twins ----------------------------------------------------------------------------------
#
# For ASGI views, adrf and MCP servers. Each runs its sync twin in a worker thread that is not
# Django's thread-sensitive one (:mod:`.workers`): the cache read, the lease and the call to the
# tenant block that thread only, never the event loop nor other requests' sync code, and the ORM
# is used from a thread, so ``SynchronousOnlyOperation`` cannot happen. Concurrent coroutines
# land in different threads and meet in the same single flight as threads and processes do. The
# context (current request, for FORWARD_USER_IP and audit) is copied into the thread.


from django_auth0_obo.workers import run_in_worker  # noqa: E402  (kept with the twins)


@sensitive_variables()
async def aget_token_on_behalf_of(
    access_token: str | VerifiedSubject, audience: str, scope: str | None = None
) -> OnBehalfOfTokenResult:
    """:func:`get_token_on_behalf_of` for coroutines; same cache, same single flight."""
    return await run_in_worker(get_token_on_behalf_of, access_token, audience, scope)


@sensitive_variables()
async def aget_token_by_exchange_profile(
    subject_token: str | VerifiedSubject,
    subject_token_type: str,
    audience: str | None = None,
    scope: str | None = None,
    requested_token_type: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TokenExchangeResult:
    """:func:`get_token_by_exchange_profile` for coroutines."""
    return await run_in_worker(
        get_token_by_exchange_profile,
        subject_token,
        subject_token_type,
        audience,
        scope,
        requested_token_type,
        extra,
    )


@sensitive_variables()
async def aget_access_token_for_connection(
    connection: str, access_token: str | VerifiedSubject, login_hint: str | None = None
) -> ConnectionTokenResult:
    """:func:`get_access_token_for_connection` for coroutines."""
    return await run_in_worker(
        get_access_token_for_connection, connection, access_token, login_hint
    )


__all__ += [
    "aget_access_token_for_connection",
    "aget_token_by_exchange_profile",
    "aget_token_on_behalf_of",
]

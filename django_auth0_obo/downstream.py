"""``OnBehalfOf``: a ``requests`` auth that calls a downstream API as the user.

``requests.get(url, auth=OnBehalfOf(request.auth, AUDIENCE))`` does what Auth0's on-behalf-of
guide asks of the caller, so views need not:

- exchanges the user's token for one to ``audience`` (served from the exchange cache);
- sends it with the scheme the tenant issued: ``Bearer``, or ``DPoP`` with a fresh proof signed by
  ``DPOP_CLIENT_KEY`` whose ``ath`` binds the token (RFC 9449 §7.1);
- when the downstream API answers 401 ``use_dpop_nonce`` with a ``DPoP-Nonce``, retries once with
  a proof carrying that nonce (remembered per downstream origin for later calls);
- when it answers 401 ``invalid_token`` (revoked, keys rotated), drops the cached token, exchanges
  afresh and retries once;
- acts only on answers from the origin the request was sent to: a redirect hop to another
  server (requests and httpx drop ``Authorization`` there) never makes it retry, so neither a
  fresh token nor a proof is ever sent to a host the caller did not name;
- refuses to send an unbound token when a bound one was asked for (``require_dpop``, on by
  default when ``DPOP_CLIENT_KEY`` is set): the tenant silently issues a Bearer token when the
  downstream API does not enable sender-constraining, and the guide says not to forward it.

The rules live in :class:`DownstreamCall`, shared with the ``httpx`` twin
(:mod:`django_auth0_obo.downstream_httpx`). It uses the exchange implementation
(:mod:`.on_behalf_of`), not the public :mod:`.exchange` that re-exports this class.

Every step that holds the user's or the issued token is a ``sensitive_variables`` frame, so
Django's error reports show neither (nor a DPoP proof) in its locals or those of what it calls.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.views.decorators.debug import sensitive_variables
from requests.auth import AuthBase

from django_auth0_obo import dpop, token_endpoint
from django_auth0_obo.exceptions import ConfigurationError, TokenExchangeError
from django_auth0_obo.on_behalf_of import (
    OnBehalfOfTokenResult,
    forget_token_on_behalf_of,
    get_token_on_behalf_of,
)

if TYPE_CHECKING:
    from django_auth0_obo.verified import VerifiedToken

logger = logging.getLogger("django_auth0_obo")

NONCE_HEADER = "DPoP-Nonce"

_nonces: dict[str, str] = {}
_nonce_lock = threading.Lock()


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``: nonces are per server (RFC 9449 §8.2)."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}"


def challenge_error(headers: Any) -> str | None:
    """The ``error`` of a ``WWW-Authenticate`` answer (any scheme), or None."""
    value = headers.get("WWW-Authenticate") or ""
    marker = 'error="'
    start = value.find(marker)
    if start < 0:
        return None
    end = value.find('"', start + len(marker))
    return value[start + len(marker) : end] if end > 0 else None


@sensitive_variables()
def forget_cached_token(token: str | VerifiedToken, audience: str, scope: str | None) -> None:
    """Drop the cached on-behalf-of token for these arguments (the downstream API refused it)."""
    forget_token_on_behalf_of(token, audience, scope)


class DownstreamCall:
    """One logical downstream call: the token to send, its headers, and what a 401 means."""

    def __init__(self, auth: DownstreamAuth, url: str) -> None:
        self.origin = origin(url)
        self.token = auth.token
        self.audience = auth.audience
        self.scope = auth.scope
        uses_dpop = token_endpoint.uses_dpop()
        if auth.require_dpop and not uses_dpop:
            raise ConfigurationError("require_dpop=True needs AUTH0_OBO DPOP_CLIENT_KEY.")
        self.require_dpop = uses_dpop if auth.require_dpop is None else auth.require_dpop
        self.result: OnBehalfOfTokenResult | None = None
        self.nonce_retried = False
        self.refreshed = False

    # The exchange (sync; the httpx twin runs it in a thread for async callers).

    @sensitive_variables()
    def exchange(self) -> OnBehalfOfTokenResult:
        result = get_token_on_behalf_of(self.token, self.audience, self.scope)
        if self.require_dpop and (result.get("token_type") or "").lower() != "dpop":
            raise TokenExchangeError(
                "unbound_token",
                f"The tenant issued an unbound token for {self.audience}; refusing to forward "
                "it. Enable sender-constrained (DPoP) tokens on that API.",
                502,
            )
        self.result = result
        return result

    @sensitive_variables()
    def refresh(self) -> OnBehalfOfTokenResult:
        """Forget the cached token the downstream API refused and exchange again."""
        forget_cached_token(self.token, self.audience, self.scope)
        self.refreshed = True
        return self.exchange()

    # Headers.

    @property
    def bound(self) -> bool:
        return self.result is not None and (self.result.get("token_type") or "") == "DPoP"

    @sensitive_variables()  # the token, and the proof being signed below
    def headers(self, method: str, url: str) -> dict[str, str]:
        """``Authorization`` (and ``DPoP`` for a bound token) for ``method url``."""
        assert self.result is not None
        access_token = self.result["access_token"]
        if not self.bound:
            return {"Authorization": f"Bearer {access_token}"}
        proof = dpop.make_proof(method, url, access_token, nonce=_nonces.get(origin(url)))
        return {"Authorization": f"DPoP {access_token}", "DPoP": proof}

    def next_step(self, url: str, status: int, headers: Any) -> str | None:
        """After an answer: ``"nonce"`` (retry with the nonce given), ``"refresh"`` (exchange
        afresh, retry) or None (hand the answer to the caller)."""
        if origin(url) != self.origin:  # a redirect hop elsewhere: never re-authorize it
            return None
        nonce = headers.get(NONCE_HEADER)
        if nonce and self.bound:
            with _nonce_lock:
                _nonces[origin(url)] = nonce
        if status != 401:
            return None
        error = challenge_error(headers)
        if error == "use_dpop_nonce" and self.bound and nonce and not self.nonce_retried:
            self.nonce_retried = True
            logger.info("Downstream API asked for a DPoP nonce; retrying once with it.")
            return "nonce"
        if error == "invalid_token" and not self.refreshed:
            logger.info("Downstream API refused the exchanged token; exchanging afresh once.")
            return "refresh"
        return None


class DownstreamAuth:
    """What both auth flavours are built from; each request gets its own :class:`DownstreamCall`.

    ``token`` is ``request.auth`` (a proof-verified ``VerifiedToken``) or a raw token string;
    ``scope`` narrows the exchanged token; ``require_dpop`` refuses unbound tokens (default: when
    DPOP_CLIENT_KEY is set). Exchange failures raise ``TokenExchangeError`` before anything is
    sent.
    """

    def __init__(
        self,
        token: str | VerifiedToken,
        audience: str,
        scope: str | None = None,
        *,
        require_dpop: bool | None = None,
    ) -> None:
        self.token = token
        self.audience = audience
        self.scope = scope
        self.require_dpop = require_dpop

    def new_call(self, url: str) -> DownstreamCall:
        """The call to ``url``: only answers from its origin are acted on."""
        return DownstreamCall(self, url)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} audience={self.audience!r} scope={self.scope!r}>"


class OnBehalfOf(DownstreamAuth, AuthBase):
    """``requests`` auth: call ``audience``'s API as the user behind ``token``."""

    @sensitive_variables()
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        call = self.new_call(request.url or "")
        call.exchange()
        request.headers.update(call.headers(request.method or "GET", request.url or ""))
        request.register_hook("response", _RetryHook(call))  # type: ignore[no-untyped-call]
        return request


class _RetryHook:
    """The response hook: the nonce retry and the fresh-exchange retry, at most once each."""

    def __init__(self, call: DownstreamCall) -> None:
        self.call = call

    @sensitive_variables()  # the retries' exchange and headers, and requests' frames below
    def __call__(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        while True:
            url = response.request.url or ""
            step = self.call.next_step(url, response.status_code, response.headers)
            if step is None or not _rewindable(response.request):
                return response
            if step == "refresh":
                self.call.refresh()
            retry = response.request.copy()
            retry.headers.update(self.call.headers(retry.method or "GET", url))
            response.content  # noqa: B018 - drain so the connection can be reused
            response.close()
            connection: Any = response.connection
            again: requests.Response = connection.send(retry, **kwargs)
            again.history.append(response)
            again.request = retry
            response = again


def _rewindable(request: requests.PreparedRequest) -> bool:
    body = request.body
    if body is None or isinstance(body, bytes | str):
        return True
    position = getattr(request, "_body_position", None)  # type: ignore[unreachable]  # stubs: body is never a stream
    if isinstance(position, int):
        requests.utils.rewind_body(request)
        return True
    return False  # a one-shot stream cannot be sent twice

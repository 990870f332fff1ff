"""From an ``Authorization`` header to a :class:`VerifiedToken`, with no framework in the way.

This is the one pipeline every entry point uses: ``Auth0Authentication`` (DRF), :func:`verify` /
:func:`averify` (django-ninja, Channels, plain ASGI) and ``django_auth0_obo.mcp``. Each step is a
plain function of strings so the DRF class only translates a request into its arguments, and no
second verifier can drift from the first.

``averify`` keeps the event loop free: the warm path (keys in this process's memory, replay
records in a local-memory cache) is pure CPU and runs inline; anything that would read the shared
cache or reach the tenant runs in a worker thread instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.views.decorators.debug import sensitive_variables

from django_auth0_obo import challenges, dpop, dpop_nonce, keys, tokens
from django_auth0_obo.conf import as_tuple, obo_settings
from django_auth0_obo.exceptions import (
    AuthenticationError,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
)
from django_auth0_obo.verified import VerifiedToken

__all__ = ["averify", "challenge_for", "parse_authorization", "verify", "verify_credentials"]

#: RFC 6750 §2.1 b64token: what a token may look like. Anything else is a malformed request.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: The b64token characters before the ``=`` padding; :func:`is_b64token` is the check in use.
_B64TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"


def is_b64token(value: str) -> bool:
    """Whether ``value`` matches :data:`TOKEN_PATTERN` in full. ``bytes.translate`` deleting the
    allowed characters is a C loop about twice as fast as the pattern on a 1 KB token (this runs
    on every request); the tests hold the two equal."""
    if not value.isascii():
        return False
    body = value.rstrip("=").encode("ascii")
    return bool(body) and not body.translate(None, _B64TOKEN_CHARS)


KEYWORDS = ("bearer", "dpop")


def parse_authorization(
    header: str | None, keywords: Sequence[str] = KEYWORDS
) -> tuple[str, str] | None:
    """Return ``(scheme, raw token)`` from an Authorization value, or None if not ours."""
    if header is None:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in keywords:
        return None
    scheme = "DPoP" if scheme.lower() == "dpop" else "Bearer"
    raw_token = rest.strip()
    if not raw_token:
        raise InvalidRequest("No token in the Authorization header.")
    if not is_b64token(raw_token):
        raise InvalidRequest("Malformed Authorization header.")
    return scheme, raw_token


def parse_dpop_header(value: str | None) -> str | None:
    """Return the single ``DPoP`` header value, or None when absent."""
    if value is None:
        return None
    value = value.strip()
    if not value or "," in value or " " in value:
        raise InvalidDPoPProof("Exactly one DPoP proof is expected.")
    return value


def verify_credentials_unwrapped(
    scheme: str,
    raw_token: str,
    *,
    proof: str | None,
    method: str,
    url: str | Callable[[], str],
    audiences: Sequence[str] | None = None,
    local_only: bool = False,
) -> VerifiedToken:
    """Return the verified token; for DPoP the proof is checked against ``cnf.jkt``.

    ``url`` may be a callable so the request URL is built only when a proof needs it.
    ``local_only`` raises ``keys.KeysNotWarm`` instead of fetching keys (see :func:`averify`).
    """
    mode = obo_settings.DPOP_MODE
    if scheme == "Bearer":
        if mode == "required":
            raise InvalidToken("DPoP-bound tokens are required.").with_scheme("DPoP")
        if proof is not None:
            raise InvalidRequest("A DPoP proof was sent with the Bearer scheme.")
    elif mode == "disabled":
        raise InvalidRequest("The DPoP scheme is not accepted.")
    elif proof is None:
        raise InvalidRequest("The DPoP scheme needs a DPoP proof header.")

    matched = tokens.verify_unwrapped(raw_token, audiences=audiences, local_only=local_only)
    bound_jkt = matched.bound_jkt
    if scheme == "Bearer":
        if bound_jkt is not None:
            raise InvalidToken("A DPoP-bound token was sent with the Bearer scheme.")
        return VerifiedToken.from_verification(raw_token, matched, "Bearer")
    if bound_jkt is None:
        raise InvalidToken("The DPoP scheme needs a DPoP-bound token.").with_scheme("DPoP")
    assert proof is not None
    jkt = dpop.verify_proof(
        proof,
        method=method,
        url=url() if callable(url) else url,
        access_token=raw_token,
        jkt=bound_jkt,
        nonce=dpop_nonce.nonce_check(),
        access_token_digest=matched.digest,
    )
    return VerifiedToken.from_verification(raw_token, matched, "DPoP", jkt=jkt)


#: :func:`verify_credentials_unwrapped` as a ``sensitive_variables`` frame: the entry point for
#: callers outside the pipeline's own decorated entry points (``Auth0Authentication``, ``verify``).
verify_credentials = sensitive_variables()(verify_credentials_unwrapped)


def challenge_for(
    url: str,
    error: AuthenticationError | None = None,
    *,
    scopes: Sequence[str] = (),
    resource: str | None = None,
    resource_metadata: str | None = None,
) -> str:
    """The ``WWW-Authenticate`` value for a request to ``url`` (scope: ``scopes`` or
    ``SCOPES_SUPPORTED``; ``resource_metadata`` given, or the Django-served metadata URL of
    ``resource`` when the app's URLs are installed)."""
    return challenges.from_settings(
        resource_metadata=resource_metadata or metadata_url(url, resource),
        **challenges.challenge_values(error, scope=challenges.challenge_scope(scopes)),
    )


def metadata_url(url: str, resource: str | None = None) -> str | None:
    """Where the metadata of ``resource`` (default RESOURCE) is served for a request to ``url``:
    :func:`challenges.metadata_path` on the request's own origin; None when ``url`` has no
    parsable origin (a caller-built URL with a malformed host), so the refusal still goes out."""
    path = challenges.metadata_path(resource)
    if path is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    return f"{parts.scheme}://{parts.netloc}{path}"


def _audiences(audience: str | Sequence[str] | None) -> tuple[str, ...] | None:
    return None if audience is None else as_tuple(audience)


@sensitive_variables()
def verify(
    authorization: str | None,
    *,
    method: str,
    url: str,
    dpop: str | None = None,
    audience: str | Sequence[str] | None = None,
) -> VerifiedToken:
    """Verify an ``Authorization`` header value (and ``DPoP`` proof) for a request.

    Raises ``AuthenticationError`` whose ``www_authenticate`` is the header to answer with (also
    for a missing or foreign header, as ``invalid_token``-less 401), or ``TenantUnavailable``.
    """
    return _verify(authorization, method=method, url=url, dpop=dpop, audience=audience)


@sensitive_variables()
async def averify(
    authorization: str | None,
    *,
    method: str,
    url: str,
    dpop: str | None = None,
    audience: str | Sequence[str] | None = None,
) -> VerifiedToken:
    """:func:`verify` for coroutines: inline while everything is in memory, else in a thread."""
    if dpop is None or _replay_cache_is_local():
        try:
            return _verify(
                authorization, method=method, url=url, dpop=dpop, audience=audience, local=True
            )
        except keys.KeysNotWarm:
            pass
    return await asyncio.to_thread(
        _verify, authorization, method=method, url=url, dpop=dpop, audience=audience
    )


class MissingCredentials(InvalidToken):
    """No Bearer/DPoP credentials: a 401 whose challenge carries no error code (RFC 6750 §3.1)."""

    error = "invalid_token"
    default_description = "Authentication credentials were not provided."


@sensitive_variables()
def _verify(
    authorization: str | None,
    *,
    method: str,
    url: str,
    dpop: str | None,
    audience: str | Sequence[str] | None,
    local: bool = False,
) -> VerifiedToken:
    try:
        credentials = parse_authorization(authorization)
        if credentials is None:
            raise MissingCredentials()
        scheme, raw_token = credentials
        return verify_credentials_unwrapped(
            scheme,
            raw_token,
            proof=parse_dpop_header(dpop),
            method=method.upper(),
            url=url,
            audiences=_audiences(audience),
            local_only=local,
        )
    except AuthenticationError as error:
        shown = None if isinstance(error, MissingCredentials) else error
        error.www_authenticate = challenge_for(url, shown)
        raise


def _replay_cache_is_local() -> bool:
    """True when DPoP replay records live in this process (no I/O to record a proof)."""
    return isinstance(caches[obo_settings.CACHE_ALIAS], LocMemCache)

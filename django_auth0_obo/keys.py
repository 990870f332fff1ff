"""The tenant's signing keys: OIDC discovery, JWKS, and two cache layers in front of them.

Lookups are answered from a per-process dict (no I/O on the warm path). Behind it sits the Django
cache named by ``CACHE_ALIAS``, so worker processes share what one of them fetched, and behind that
the tenant itself: ``https://<domain>/.well-known/openid-configuration`` names the ``jwks_uri``.

- Keys are fresh for ``JWKS_CACHE_TTL`` seconds, or less when the JWKS response says
  ``Cache-Control: max-age`` (never less than :data:`MIN_TTL`).
- An unknown ``kid`` refetches the JWKS at most once per ``JWKS_REFETCH_COOLDOWN`` per issuer,
  in this process and (through ``cache.add``) across processes, so forged kids cannot make us
  hammer the tenant.
- When a refresh fails the keys we have keep working (a warning is logged once); with no keys at
  all the answer is :class:`TenantUnavailable`, never "invalid token".
- Key objects are built once per JWKS version, with the key type pinned to the JWS algorithm
  family, so a token can never pick HMAC or another family for a published key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.core.cache import caches

from django_auth0_obo import domains, http, jose
from django_auth0_obo.conf import obo_settings, on_reload
from django_auth0_obo.exceptions import InvalidToken, TenantUnavailable

logger = logging.getLogger("django_auth0_obo")

DISCOVERY_PATH = "/.well-known/openid-configuration"

#: Shortest freshness we accept from ``Cache-Control: max-age`` (a tenant saying 0 must not turn
#: every request into a fetch).
MIN_TTL = 5.0

#: How long fetched documents stay in the shared cache after they stop being fresh, so a worker
#: that starts while the tenant is down can still verify tokens.
STALE_GRACE = 24 * 3600

#: Largest discovery or JWKS body we read.
MAX_BODY_BYTES = 512 * 1024

_CACHE_PREFIX = "auth0_obo:keys:v1:"

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One published key, parsed once: the public key plus what it may verify."""

    kid: str
    public: jose.PublicJWK
    #: The JWK's own ``alg`` when it names one: the token's ``alg`` must then be exactly that.
    alg: str | None

    @property
    def key(self) -> Any:
        """The ``cryptography`` public key object."""
        return self.public.key

    def accepts(self, alg: str) -> bool:
        """Whether a token signed with ``alg`` may be verified with this key (no confusion)."""
        if self.alg is not None and self.alg != alg:
            return False
        return self.public.accepts(alg)

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Check a JWS signature; the caller has already checked :meth:`accepts`."""
        return jose.verify(alg, self.public.key, signing_input, signature)


@dataclass(frozen=True, slots=True)
class SkippedKey:
    """A JWKS entry the verifier will not use, and why (safe to print: no key material)."""

    kid: str
    reason: str


@dataclass(slots=True)
class KeySet:
    """One issuer's keys at one JWKS version, as this process holds them."""

    issuer: str
    jwks_uri: str
    keys: dict[str, VerificationKey]
    fingerprint: str
    fetched_at: float
    #: Until when the keys are fresh; after a failed refresh, when to try again.
    fresh_until: float
    warned_stale: bool = field(default=False)
    #: The JWKS entries left out, with the reason (what ``auth0_obo_check`` prints).
    skipped: tuple[SkippedKey, ...] = ()
    #: (kid, alg) pairs already found to fit (:meth:`VerificationKey.accepts`), answered by a
    #: dict lookup on every later token. Bounded: kids of this set times allowed algorithms.
    accepting: dict[tuple[str, str], VerificationKey] = field(default_factory=dict)


_local: dict[str, KeySet] = {}
_local_lock = threading.Lock()
_issuer_locks: dict[str, threading.RLock] = {}
#: Per-process memory of the last unknown-kid refetch and of failed first fetches, per issuer.
_last_kid_refetch: dict[str, float] = {}
_fetch_failed_until: dict[str, float] = {}
_change_listeners: list[Callable[[], None]] = []


# Public API -------------------------------------------------------------------------------------


class KeysNotWarm(Exception):
    """Raised instead of doing I/O when the caller asked for the per-process keys only."""


def get_verification_key(
    issuer: str, kid: str, alg: str, *, local_only: bool = False
) -> VerificationKey:
    """Return the key that may verify a token from ``issuer`` with header ``kid`` and ``alg``.

    Raises InvalidToken for an issuer we do not trust (checked before any fetch), an unknown
    ``kid`` or a key of another family; TenantUnavailable when no keys can be had at all.
    With ``local_only`` (async callers on the event loop) it raises :class:`KeysNotWarm` where it
    would otherwise read the shared cache or the tenant, so the caller can retry off the loop.
    """
    if issuer not in domains.accepted_issuers():
        raise InvalidToken("Invalid issuer.")
    now = time.time()
    keyset = _local.get(issuer)
    if keyset is None or now >= keyset.fresh_until:
        if local_only:
            raise KeysNotWarm(issuer)
        keyset = get_keyset(issuer)
    key = keyset.accepting.get((kid, alg))
    if key is not None:
        return key
    key = keyset.keys.get(kid)
    if key is None:
        if local_only:
            raise KeysNotWarm(issuer)
        key = _refetch_for_kid(issuer, kid)
    if not key.accepts(alg):
        raise InvalidToken("The signing key does not match the token's algorithm.")
    if keyset.keys.get(kid) is key:  # one of this key set's own (a refetch installs a new set)
        keyset.accepting[(kid, alg)] = key
    return key


def get_keyset(issuer: str) -> KeySet:
    """Return the issuer's current keys, refreshing them when stale (fetching when absent)."""
    now = time.time()
    keyset = _local.get(issuer)
    if keyset is not None and now < keyset.fresh_until:
        return keyset
    with _lock_for(issuer):
        now = time.time()
        keyset = _local.get(issuer)
        if keyset is not None and now < keyset.fresh_until:
            return keyset
        shared = _shared_get(issuer)
        if shared is not None and (keyset is None or shared["fetched_at"] > keyset.fetched_at):
            candidate = _build_keyset(issuer, shared)
            if candidate is not None:
                keyset = _install(candidate)
                if now < keyset.fresh_until:
                    return keyset
        if keyset is None and now < _fetch_failed_until.get(issuer, 0.0):
            raise TenantUnavailable("The authorization server's signing keys are unavailable.")
        try:
            document = _fetch_document(issuer)
        except TenantUnavailable:
            backoff = max(float(obo_settings.JWKS_REFETCH_COOLDOWN), MIN_TTL)
            if keyset is None:
                _fetch_failed_until[issuer] = now + backoff
                raise
            if not keyset.warned_stale:
                logger.warning(
                    "Refreshing the signing keys of %s failed; still using the cached keys.",
                    issuer,
                )
                keyset.warned_stale = True
            keyset.fresh_until = now + backoff
            return keyset
        _fetch_failed_until.pop(issuer, None)
        keyset = _install_fetched(issuer, document)
        return keyset


@dataclass(frozen=True, slots=True)
class KeyReport:
    """What the verifier would hold for one issuer if it fetched its keys now."""

    issuer: str
    jwks_uri: str
    token_endpoint: str | None
    #: The keys tokens may be verified with, by kid.
    keys: dict[str, VerificationKey]
    #: The JWKS entries the verifier leaves out, with why.
    skipped: tuple[SkippedKey, ...]


def inspect_issuer(issuer: str) -> KeyReport:
    """Fetch ``issuer``'s discovery document and JWKS now, bypassing every cache, and say which
    keys the verifier would use and which it would skip (for ``auth0_obo_check``).

    Parses exactly as verification does and changes no cached state. Raises KeysUnavailable
    (with a ``detail`` for the operator) when the tenant does not answer properly; a JWKS
    without any usable key is reported, not raised.
    """
    discovery, jwks_uri = _discover(issuer)
    jwks, _ = _download_jwks(jwks_uri)
    usable, skipped = inspect_jwks(jwks)
    token_endpoint = discovery.get("token_endpoint")
    return KeyReport(
        issuer=issuer,
        jwks_uri=jwks_uri,
        token_endpoint=token_endpoint if isinstance(token_endpoint, str) else None,
        keys=usable,
        skipped=tuple(skipped),
    )


def prefetch() -> None:
    """Fetch (or load from the shared cache) the keys of every configured issuer."""
    for issuer in sorted(obo_settings.issuers):
        get_keyset(issuer)


def discovery_url(issuer: str) -> str:
    """``https://<domain>/.well-known/openid-configuration`` for an ``https://<domain>/`` issuer."""
    return issuer.rstrip("/") + DISCOVERY_PATH


def on_keys_changed(callback: Callable[[], None]) -> Callable[[], None]:
    """Register a callable run when this process starts using a different set of keys."""
    _change_listeners.append(callback)
    return callback


def clear_cache() -> None:
    """Forget this process's keys and cooldowns (the shared Django cache is left alone)."""
    with _local_lock:
        _local.clear()
        _last_kid_refetch.clear()
        _fetch_failed_until.clear()
    _notify_change()


on_reload(clear_cache)


def holds_fresh_keys(issuer: str, now: float) -> bool:
    """Whether this process holds keys for ``issuer`` that are still fresh at ``now``.

    The token memo answers only while this is true: once the keys are stale a remembered token
    is verified again, which refreshes them, so a key the tenant has retired stops working at
    the next refresh whether or not the token was seen before."""
    keyset = _local.get(issuer)
    return keyset is not None and now < keyset.fresh_until


def holds_keys_for(issuer: str) -> bool:
    """Whether this process holds a key set for ``issuer`` now (nothing is fetched)."""
    return issuer in _local


def shared_cache_keys(issuer: str) -> list[str]:
    """The shared Django cache's keys for ``issuer``: its discovery/JWKS document, its cooldown."""
    return [_cache_key("doc", issuer), _cache_key("cooldown", issuer)]


def forget_issuer(issuer: str) -> None:
    """Forget everything cached about ``issuer``, here and in the shared Django cache.

    For test suites that restart a tenant between tests: unlike ``cache.clear()`` it leaves the
    rest of a shared cache (a developer's Redis) alone.
    """
    clear_cache()
    caches[obo_settings.CACHE_ALIAS].delete_many(shared_cache_keys(issuer))


def _after_fork_in_child() -> None:
    """A worker forked while another thread held a lock must not inherit it locked."""
    global _local_lock
    _local_lock = threading.Lock()
    _issuer_locks.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


# Unknown kid ------------------------------------------------------------------------------------


def _refetch_for_kid(issuer: str, kid: str) -> VerificationKey:
    """One JWKS refetch for an unknown kid, unless one happened within the cooldown."""
    cooldown = float(obo_settings.JWKS_REFETCH_COOLDOWN)
    with _lock_for(issuer):
        now = time.time()
        keyset = _local.get(issuer) or get_keyset(issuer)
        if kid in keyset.keys:  # another thread got there first
            return keyset.keys[kid]
        shared = _shared_get(issuer)
        if shared is not None and shared["fetched_at"] > keyset.fetched_at:
            candidate = _build_keyset(issuer, shared)
            if candidate is not None:
                keyset = _install(candidate)
                if kid in keyset.keys:
                    return keyset.keys[kid]
        if cooldown > 0:
            if now < _last_kid_refetch.get(issuer, float("-inf")) + cooldown:
                raise InvalidToken("Unknown signing key.")
            _last_kid_refetch[issuer] = now
            if not _shared_add(_cache_key("cooldown", issuer), cooldown):
                raise InvalidToken("Unknown signing key.")
        try:
            jwks, ttl = _fetch_jwks(keyset.jwks_uri)
        except TenantUnavailable:
            raise InvalidToken("Unknown signing key.") from None
        document = _document(issuer, keyset.jwks_uri, jwks, ttl, now)
        keyset = _install_fetched(issuer, document)
        key = keyset.keys.get(kid)
        if key is None:
            raise InvalidToken("Unknown signing key.")
        return key


# Fetching ---------------------------------------------------------------------------------------


def _fetch_document(issuer: str) -> dict[str, Any]:
    """Discovery then JWKS, as one cacheable document; TenantUnavailable on any failure."""
    now = time.time()
    _, jwks_uri = _discover(issuer)
    jwks, ttl = _fetch_jwks(jwks_uri)
    return _document(issuer, jwks_uri, jwks, ttl, now)


def _discover(issuer: str) -> tuple[dict[str, Any], str]:
    """The issuer's discovery document and its ``jwks_uri``, checked."""
    discovery, _ = _get_json(discovery_url(issuer), "discovery document")
    if not isinstance(discovery, dict):
        raise _unavailable("The discovery document of %s is not a JSON object.", issuer)
    if discovery.get("issuer") != issuer:
        raise _unavailable("The discovery document of %s names another issuer.", issuer)
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != "https":
        raise _unavailable("The discovery document of %s has no https jwks_uri.", issuer)
    return discovery, jwks_uri


def _fetch_jwks(jwks_uri: str) -> tuple[dict[str, Any], float]:
    """The JWKS and how long it may be cached (TTL, shortened by ``Cache-Control: max-age``)."""
    jwks, response = _download_jwks(jwks_uri)
    usable, skipped = inspect_jwks(jwks)
    for entry in skipped:
        logger.warning("Skipping JWKS key %r of %s: %s.", entry.kid, jwks_uri, entry.reason)
    if not usable:
        raise _unavailable("The JWKS at %s has no usable signing key.", jwks_uri)
    ttl = float(obo_settings.JWKS_CACHE_TTL)
    max_age = _max_age(response.headers.get("Cache-Control", ""))
    if max_age is not None and max_age < ttl:
        ttl = max(float(max_age), min(MIN_TTL, ttl))
    return jwks, ttl


def _download_jwks(jwks_uri: str) -> tuple[dict[str, Any], requests.Response]:
    jwks, response = _get_json(jwks_uri, "JWKS")
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise _unavailable("The JWKS at %s has no keys list.", jwks_uri)
    return jwks, response


def _get_json(url: str, what: str) -> tuple[Any, requests.Response]:
    try:
        response = http.tenant_request(
            "GET", url, headers={"Accept": "application/json"}, stream=True
        )
    except requests.RequestException as error:
        raise _unavailable(
            "Fetching the %s from %s failed: %s", what, url, type(error).__name__
        ) from None
    try:
        if response.status_code != 200:
            raise _unavailable("The %s at %s answered %s.", what, url, response.status_code)
        body = bytearray()
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise _unavailable("The %s from %s is too large.", what, url)
        except requests.RequestException as error:
            raise _unavailable(
                "Reading the %s from %s failed: %s", what, url, type(error).__name__
            ) from None
    finally:
        response.close()
    try:
        return jose.loads(bytes(body)), response
    except jose.JOSEError:
        raise _unavailable("The %s from %s is not valid JSON.", what, url) from None


class KeysUnavailable(TenantUnavailable):
    """No usable keys could be fetched; ``detail`` says why, for the operator (URLs and HTTP
    statuses, never key material). Clients only ever see the generic description."""

    def __init__(self, detail: str) -> None:
        super().__init__("The authorization server's signing keys are unavailable.")
        self.detail = detail


def _unavailable(message: str, *args: Any) -> KeysUnavailable:
    logger.warning(message, *args)
    return KeysUnavailable(message % args)


def _max_age(cache_control: str) -> int | None:
    if re.search(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", cache_control, re.IGNORECASE):
        return 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def _document(
    issuer: str, jwks_uri: str, jwks: dict[str, Any], ttl: float, now: float
) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "jwks": jwks,
        "fetched_at": now,
        "fresh_until": now + ttl,
    }


# Parsing ----------------------------------------------------------------------------------------


def inspect_jwks(jwks: Any) -> tuple[dict[str, VerificationKey], list[SkippedKey]]:
    """The usable signature keys of a JWKS by kid, and the entries skipped with the reason.

    Anything odd is skipped, never trusted and never an error: a member of the wrong type, a
    private or symmetric key, an encryption key, an algorithm we do not verify with, an RSA key
    under :data:`~django_auth0_obo.jose.MIN_RSA_BITS`, a second key with the same kid.
    """
    keys: dict[str, VerificationKey] = {}
    skipped: list[SkippedKey] = []
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        kid = entry.get("kid") if isinstance(entry, dict) else None
        label = kid[:64] if isinstance(kid, str) and kid else f"#{index}"
        try:
            parsed = _parse_key(entry)
        except jose.JWKError as error:
            skipped.append(SkippedKey(label, str(error)))
            continue
        if parsed.kid in keys:
            skipped.append(SkippedKey(label, "another key has the same kid"))
            continue
        keys[parsed.kid] = parsed
    return keys, skipped


def _parse_key(entry: Any) -> VerificationKey:
    """The key of one JWKS entry, or JWKError saying why it cannot be used."""
    if not isinstance(entry, dict):
        raise jose.JWKError("not a JSON object")
    kid = entry.get("kid")
    if type(kid) is not str or not kid:
        raise jose.JWKError("no kid")
    if entry.get("use", "sig") != "sig":
        raise jose.JWKError("not a signature key (use is not sig)")
    public = jose.public_key_from_jwk(entry)
    alg = entry.get("alg")
    return VerificationKey(kid=kid, public=public, alg=alg if type(alg) is str else None)


def _build_keyset(issuer: str, document: Mapping[str, Any]) -> KeySet | None:
    try:
        jwks = document["jwks"]
        keys, skipped = inspect_jwks(jwks)
        fingerprint = hashlib.sha256(
            json.dumps(jwks, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        keyset = KeySet(
            issuer=issuer,
            jwks_uri=str(document["jwks_uri"]),
            keys=keys,
            fingerprint=fingerprint,
            fetched_at=float(document["fetched_at"]),
            fresh_until=float(document["fresh_until"]),
            skipped=tuple(skipped),
        )
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
        # RecursionError: a document nested about as deep as the JSON parser allows, parsed
        # fine, can fail to serialise for the fingerprint one frame deeper; it has no keys.
        return None
    return keyset if keys else None


def _install_fetched(issuer: str, document: dict[str, Any]) -> KeySet:
    keyset = _build_keyset(issuer, document)
    if keyset is None:  # _fetch_jwks already refused a JWKS without usable keys
        raise TenantUnavailable("The authorization server's signing keys are unavailable.")
    ttl = max(keyset.fresh_until - keyset.fetched_at, 0.0)
    _shared_set(issuer, document, ttl + STALE_GRACE)
    return _install(keyset)


def _install(keyset: KeySet) -> KeySet:
    with _local_lock:
        previous = _local.get(keyset.issuer)
        _local[keyset.issuer] = keyset
    if previous is not None and previous.fingerprint != keyset.fingerprint:
        logger.info("The signing keys of %s changed.", keyset.issuer)
        _notify_change()
    return keyset


def _notify_change() -> None:
    for callback in list(_change_listeners):
        callback()


def _lock_for(issuer: str) -> threading.RLock:
    with _local_lock:
        lock = _issuer_locks.get(issuer)
        if lock is None:
            lock = _issuer_locks[issuer] = threading.RLock()
        return lock


# The shared (Django) cache ----------------------------------------------------------------------
# A broken cache backend must not break authentication while this process holds keys, so its
# errors are logged and treated as a miss.


def _cache_key(kind: str, issuer: str) -> str:
    return f"{_CACHE_PREFIX}{kind}:{hashlib.sha256(issuer.encode()).hexdigest()[:40]}"


def _shared_get(issuer: str) -> dict[str, Any] | None:
    try:
        value = caches[obo_settings.CACHE_ALIAS].get(_cache_key("doc", issuer))
    except Exception as error:  # any backend failure is a cache miss
        logger.warning("Reading cached keys failed: %s", type(error).__name__)
        return None
    if not isinstance(value, dict) or value.get("issuer") != issuer:
        return None
    if not isinstance(value.get("fetched_at"), int | float):
        return None
    return value


def _shared_set(issuer: str, document: dict[str, Any], timeout: float) -> None:
    try:
        caches[obo_settings.CACHE_ALIAS].set(_cache_key("doc", issuer), document, timeout)
    except Exception as error:  # the per-process layer has the keys
        logger.warning("Caching keys failed: %s", type(error).__name__)


def _shared_add(key: str, timeout: float) -> bool:
    """``cache.add``: True when we took the slot (no other worker did within ``timeout``)."""
    try:
        return bool(caches[obo_settings.CACHE_ALIAS].add(key, 1, timeout))
    except Exception as error:  # the per-process cooldown still holds
        logger.warning("Cooldown bookkeeping failed: %s", type(error).__name__)
        return True

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

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from django.core.cache import caches
from jwt.algorithms import Algorithm, get_default_algorithms

from django_auth0_obo import domains, http
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

#: Smallest RSA modulus we trust.
MIN_RSA_BITS = 2048

_CACHE_PREFIX = "auth0_obo:keys:v1:"

#: Which curve each ECDSA algorithm needs.
_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})

#: JWS algorithms we can ever verify access tokens with: asymmetric only. ``none`` and HMAC are
#: absent on purpose, whatever the settings say.
ASYMMETRIC_ALGORITHMS = frozenset(_RSA_ALGORITHMS | set(_EC_CURVES) | {"EdDSA"})

_JWS: dict[str, Algorithm] = {
    name: alg for name, alg in get_default_algorithms().items() if name in ASYMMETRIC_ALGORITHMS
}
_PUBLIC_KTY = frozenset({"RSA", "EC", "OKP"})
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One published key, parsed once: the crypto object plus what it may verify."""

    kid: str
    key: Any
    #: The JWK's own ``alg`` when it names one: the token's ``alg`` must then be exactly that.
    alg: str | None

    def accepts(self, alg: str) -> bool:
        """Whether a token signed with ``alg`` may be verified with this key (no confusion)."""
        if self.alg is not None and self.alg != alg:
            return False
        key = self.key
        if alg in _RSA_ALGORITHMS:
            return isinstance(key, rsa.RSAPublicKey)
        curve = _EC_CURVES.get(alg)
        if curve is not None:
            return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve)
        if alg == "EdDSA":
            return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
        return False

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Check a JWS signature; the caller has already checked :meth:`accepts`."""
        return _JWS[alg].verify(signing_input, self.key, signature)


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


_local: dict[str, KeySet] = {}
_local_lock = threading.Lock()
_issuer_locks: dict[str, threading.RLock] = {}
#: Per-process memory of the last unknown-kid refetch and of failed first fetches, per issuer.
_last_kid_refetch: dict[str, float] = {}
_fetch_failed_until: dict[str, float] = {}
_change_listeners: list[Callable[[], None]] = []


# Public API -------------------------------------------------------------------------------------


def get_verification_key(issuer: str, kid: str, alg: str) -> VerificationKey:
    """Return the key that may verify a token from ``issuer`` with header ``kid`` and ``alg``.

    Raises InvalidToken for an issuer we do not trust (checked before any fetch), an unknown
    ``kid`` or a key of another family; TenantUnavailable when no keys can be had at all.
    """
    if issuer not in domains.accepted_issuers():
        raise InvalidToken("Invalid issuer.")
    now = time.time()
    keyset = _local.get(issuer)
    if keyset is None or now >= keyset.fresh_until:
        keyset = get_keyset(issuer)
    key = keyset.keys.get(kid)
    if key is None:
        key = _refetch_for_kid(issuer, kid)
    if not key.accepts(alg):
        raise InvalidToken("The signing key does not match the token's algorithm.")
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


def forget_issuer(issuer: str) -> None:
    """Forget everything cached about ``issuer``, here and in the shared Django cache.

    For test suites that restart a tenant between tests: unlike ``cache.clear()`` it leaves the
    rest of a shared cache (a developer's Redis) alone.
    """
    clear_cache()
    caches[obo_settings.CACHE_ALIAS].delete_many(
        [_cache_key("doc", issuer), _cache_key("cooldown", issuer)]
    )


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
    discovery, _ = _get_json(discovery_url(issuer), "discovery document")
    if not isinstance(discovery, dict):
        raise _unavailable("The discovery document of %s is not a JSON object.", issuer)
    if discovery.get("issuer") != issuer:
        raise _unavailable("The discovery document of %s names another issuer.", issuer)
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != "https":
        raise _unavailable("The discovery document of %s has no https jwks_uri.", issuer)
    jwks, ttl = _fetch_jwks(jwks_uri)
    return _document(issuer, jwks_uri, jwks, ttl, now)


def _fetch_jwks(jwks_uri: str) -> tuple[dict[str, Any], float]:
    """The JWKS and how long it may be cached (TTL, shortened by ``Cache-Control: max-age``)."""
    jwks, response = _get_json(jwks_uri, "JWKS")
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise _unavailable("The JWKS at %s has no keys list.", jwks_uri)
    if not _parse_keys(jwks):
        raise _unavailable("The JWKS at %s has no usable signing key.", jwks_uri)
    ttl = float(obo_settings.JWKS_CACHE_TTL)
    max_age = _max_age(response.headers.get("Cache-Control", ""))
    if max_age is not None and max_age < ttl:
        ttl = max(float(max_age), min(MIN_TTL, ttl))
    return jwks, ttl


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
            raise _unavailable(
                "Fetching the %s from %s failed: HTTP %s", what, url, response.status_code
            )
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
        return json.loads(bytes(body)), response
    except (ValueError, RecursionError):
        raise _unavailable("The %s from %s is not valid JSON.", what, url) from None


def _unavailable(message: str, *args: Any) -> TenantUnavailable:
    logger.warning(message, *args)
    return TenantUnavailable("The authorization server's signing keys are unavailable.")


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


def _parse_keys(jwks: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """The usable signature keys of a JWKS, by kid; anything odd is skipped, not trusted."""
    keys: dict[str, VerificationKey] = {}
    for entry in jwks.get("keys") or ():
        parsed = _parse_key(entry)
        if parsed is not None and parsed.kid not in keys:
            keys[parsed.kid] = parsed
    return keys


def _parse_key(entry: Any) -> VerificationKey | None:
    if not isinstance(entry, dict):
        return None
    kid, kty, alg = entry.get("kid"), entry.get("kty"), entry.get("alg")
    if not isinstance(kid, str) or not kid or kty not in _PUBLIC_KTY:
        return None
    if entry.get("use", "sig") != "sig" or _PRIVATE_MEMBERS & entry.keys():
        return None
    if alg is not None and alg not in ASYMMETRIC_ALGORITHMS:
        return None
    try:
        key = jwt.PyJWK(entry).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        logger.warning("Skipping unusable JWKS key %r.", kid[:64])
        return None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        logger.warning(
            "Skipping JWKS key %r: RSA key shorter than %s bits.", kid[:64], MIN_RSA_BITS
        )
        return None
    if not isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return None
    return VerificationKey(kid=kid, key=key, alg=alg)


def _build_keyset(issuer: str, document: Mapping[str, Any]) -> KeySet | None:
    try:
        jwks = document["jwks"]
        keys = _parse_keys(jwks)
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
        )
    except (KeyError, TypeError, ValueError, AttributeError):
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

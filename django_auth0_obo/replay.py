"""DPoP replay detection (RFC 9449 §11.1): each proof's ``jti`` is accepted once per key and URL.

The record lives in the Django cache named by CACHE_ALIAS, written with ``cache.add`` — atomic
on the local-memory, Redis, Memcached and database backends — so with a shared cache a proof
replayed to another worker process is refused too. The cache key is a SHA-256 digest: no proof,
token or client-chosen string is ever used as a key.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import caches

from django_auth0_obo.conf import obo_settings
from django_auth0_obo.exceptions import TenantUnavailable

logger = logging.getLogger("django_auth0_obo")

KEY_PREFIX = "auth0_obo:dpop:jti:"


def replay_key(jkt: str, htu: str, jti: str) -> str:
    """The cache key for one proof: a digest of (key thumbprint, normalised htu, jti)."""
    material = "\x00".join((jkt, htu, jti)).encode("utf-8", "surrogatepass")
    return KEY_PREFIX + hashlib.sha256(material).hexdigest()


def remember_proof(jkt: str, htu: str, jti: str) -> bool:
    """Record a proof; return True the first time, False when it was seen within the window.

    The record outlives every ``iat`` the verifier would still accept, so an expired record can
    only belong to a proof that is refused as too old anyway. When the cache cannot be written
    the request fails closed (503): accepting it would allow replays.
    """
    timeout = obo_settings.DPOP_IAT_OFFSET + obo_settings.DPOP_IAT_LEEWAY
    try:
        return bool(caches[obo_settings.CACHE_ALIAS].add(replay_key(jkt, htu, jti), 1, timeout))
    except Exception as error:  # any backend failure (Redis down, DB error...) fails closed
        logger.warning("DPoP replay cache unavailable: %s", type(error).__name__)
        raise TenantUnavailable("DPoP replay detection is unavailable.") from error

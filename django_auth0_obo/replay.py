"""DPoP replay detection (RFC 9449 §11.1): each proof's ``jti`` is accepted once per key and URL.

The record lives in the Django cache named by CACHE_ALIAS, so with a shared cache a proof
replayed to another worker process is refused too. On Django's Redis backend the check is one
``SET key 1 NX PX ttl`` on a Redis client obtained once per process (building a client through
the cache API on every call cost more than the ES256 verification it protects); on any other
backend it is ``cache.add``, atomic on local memory, Memcached and the database cache. Either
way the key is the cache's own (``KEY_PREFIX``, version) around a SHA-256 digest: no proof,
token or client-chosen string is ever used as a key. Any cache failure refuses the request.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed

from django_auth0_obo.conf import obo_settings, on_reload
from django_auth0_obo.exceptions import TenantUnavailable

logger = logging.getLogger("django_auth0_obo")

KEY_PREFIX = "auth0_obo:dpop:jti:"

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


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
    alias = obo_settings.CACHE_ALIAS
    key = replay_key(jkt, htu, jti)
    try:
        cache = caches[alias]
        if isinstance(cache, RedisCache):
            client = _clients.get(alias) or _redis_client(alias, cache)
            full_key = cache.make_key(key)  # a fixed-shape digest: nothing to validate
            return bool(client.set(full_key, 1, nx=True, px=max(1, int(timeout * 1000))))
        return bool(cache.add(key, 1, timeout))
    except Exception as error:  # any backend failure (Redis down, DB error...) fails closed
        logger.warning("DPoP replay cache unavailable: %s", type(error).__name__)
        raise TenantUnavailable("DPoP replay detection is unavailable.") from error


def _redis_client(alias: str, cache: RedisCache) -> Any:
    """The backend's own write client (its connection pool), kept for the life of the process;
    redis-py's pool reconnects after a fork or a dropped connection by itself."""
    with _clients_lock:
        client = _clients.get(alias)
        if client is None:
            client = _clients[alias] = cache._cache.get_client(write=True)
        return client


def kept_client(alias: str) -> Any | None:
    """The Redis client kept for ``alias`` in this process, if a proof has needed one."""
    return _clients.get(alias)


def forget_clients() -> None:
    """Drop the kept Redis clients (settings changed: CACHES or CACHE_ALIAS may differ)."""
    with _clients_lock:
        _clients.clear()


def _caches_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        forget_clients()


on_reload(forget_clients)
setting_changed.connect(_caches_changed, dispatch_uid="django_auth0_obo.replay.caches")

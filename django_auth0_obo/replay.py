"""DPoP replay detection (RFC 9449 §11.1): each proof's ``jti`` is accepted once per key and URL.

The record lives in the Django cache named by CACHE_ALIAS, so with a shared cache a proof
replayed to another worker process is refused too. On Django's Redis backend the check is one
``SET key 1 NX PX ttl`` sent on a connection each thread keeps for itself, opened with the
settings of the backend's own pool (building a client through the cache API on every call cost
more than the ES256 verification it protects, and redis-py's per-command pool checkout, retry
wrapper and release still cost three times the round trip itself); on any other
backend it is ``cache.add``, atomic on local memory, Memcached and the database cache. Either
way the key is the cache's own (``KEY_PREFIX``, version) around a SHA-256 digest: no proof,
token or client-chosen string is ever used as a key. Any cache failure refuses the request.
"""

from __future__ import annotations

import hashlib
import logging
import os
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


class _Held(threading.local):
    """This thread's own connection per alias: (connection, pool it copies, pid, generation)."""

    def __init__(self) -> None:
        self.connections: dict[str, tuple[Any, Any, int, int]] = {}


_held = _Held()
#: Bumped by :func:`forget_clients`; a thread's connection of an older generation is closed.
_generation = 0


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
            return _set_nx(alias, client, full_key, max(1, int(timeout * 1000)))
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


def _set_nx(alias: str, client: Any, key: str, ttl_ms: int) -> bool:
    """``SET key 1 NX PX ttl_ms`` on this thread's connection; True when the key was set.

    A connection that fails is closed (a half-read reply must never answer the next proof) and
    the command is sent once more on a new one, since Redis may have closed an idle connection;
    a second failure propagates and the caller refuses the request. A retried command whose
    first attempt did reach Redis finds its own record and refuses the proof: closed, not open.
    """
    connection = _connection(alias, client)
    try:
        return _send_set_nx(connection, key, ttl_ms)
    except Exception:
        connection.disconnect()
    try:
        return _send_set_nx(connection, key, ttl_ms)
    except Exception:
        connection.disconnect()
        raise


def _send_set_nx(connection: Any, key: str, ttl_ms: int) -> bool:
    connection.send_command("SET", key, 1, "NX", "PX", ttl_ms)
    return connection.read_response() is not None  # b"OK" when set, nil when it existed


def _connection(alias: str, client: Any) -> Any:
    """This thread's connection for ``alias``: made from the kept client's pool settings, new
    after a fork (never a parent's socket) or after :func:`forget_clients`."""
    pool = client.connection_pool
    pid = os.getpid()
    held = _held.connections.get(alias)
    if held is not None:
        connection, held_pool, held_pid, generation = held
        if held_pool is pool and held_pid == pid and generation == _generation:
            return connection
        if held_pid == pid:
            connection.disconnect()
    connection = pool.connection_class(**pool.connection_kwargs)
    _held.connections[alias] = (connection, pool, pid, _generation)
    return connection


def kept_client(alias: str) -> Any | None:
    """The Redis client kept for ``alias`` in this process, if a proof has needed one."""
    return _clients.get(alias)


def held_connection(alias: str) -> Any | None:
    """This thread's connection for ``alias``, if a proof on this thread has needed one."""
    held = _held.connections.get(alias)
    return None if held is None else held[0]


def forget_clients() -> None:
    """Drop the kept Redis clients (settings changed: CACHES or CACHE_ALIAS may differ); each
    thread's connection is closed and replaced at its next use."""
    global _generation
    with _clients_lock:
        _clients.clear()
        _generation += 1


def _caches_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        forget_clients()


on_reload(forget_clients)
setting_changed.connect(_caches_changed, dispatch_uid="django_auth0_obo.replay.caches")

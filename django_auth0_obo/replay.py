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

A record evicted before its window ends lets the proof it stands for be accepted again, and any
client can fill a cache with records of its own proofs. So when CACHE_ALIAS is a LocMemCache
(which culls a third of its entries at MAX_ENTRIES, 300 by default) the records stay in this
process instead (:class:`LocalRecords`, per-process like that cache): never evicted before they
expire, and when it is full of live records, new proofs are refused. Redis must not evict them
either (``maxmemory-policy noeviction``); Memcached, DatabaseCache and FileBasedCache can, which
system check W005 reports.

The check comes in two steps, :func:`claim_proof` then :meth:`ProofClaim.result`: the SET NX is
sent first and its reply read afterwards, so the verifier checks the proof's signature (an ES256
verification costs about as much as the round trip) while Redis answers. The reply owed in
between is always read, or its connection closed, before that connection carries anything else.
:func:`remember_proof` is both steps at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed

from django_auth0_obo.conf import obo_settings, on_reload
from django_auth0_obo.exceptions import TenantUnavailable

logger = logging.getLogger("django_auth0_obo")

KEY_PREFIX = "auth0_obo:dpop:jti:"
#: Records :class:`LocalRecords` holds at most: 3,000 proofs a second over the default window of
#: 330 s, more than one process verifies; about 150 MB when full.
MAX_LOCAL_RECORDS = 1_000_000

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
#: The Redis backend per alias, once seen: its ``make_key`` and client serve every thread, and
#: ``caches[alias]`` (a per-thread lookup through asgiref's ``Local``) is skipped. Other
#: backends are looked up per call: their clients need not be thread-safe.
_redis_backends: dict[str, RedisCache] = {}
#: The aliases seen to be a LocMemCache: their records go to :data:`local_records`.
_local_aliases: set[str] = set()


class _Held(threading.local):
    """This thread's own connection per alias: (connection, pool it copies, pid, generation)."""

    def __init__(self) -> None:
        self.connections: dict[str, tuple[Any, Any, int, int]] = {}
        #: The claim per alias whose SET NX reply is still unread on this thread's connection.
        self.owed: dict[str, ProofClaim] = {}


_held = _Held()
#: Bumped by :func:`forget_clients`; a thread's connection of an older generation is closed.
_generation = 0


def record_digest(jkt: str, htu: str, jti: str) -> bytes:
    """SHA-256 of (key thumbprint, normalised htu, jti): what identifies one proof's record."""
    material = "\x00".join((jkt, htu, jti)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(material).digest()


def replay_key(jkt: str, htu: str, jti: str) -> str:
    """The cache key for one proof: its :func:`record_digest` in hex."""
    return KEY_PREFIX + record_digest(jkt, htu, jti).hex()


def remember_proof(jkt: str, htu: str, jti: str) -> bool:
    """Record a proof; return True the first time, False when it was seen within the window.

    The record outlives every ``iat`` the verifier would still accept, so an expired record can
    only belong to a proof that is refused as too old anyway. When the cache cannot be written
    the request fails closed (503): accepting it would allow replays.
    """
    with claim_proof(jkt, htu, jti) as claim:
        return claim.result()


def claim_proof(jkt: str, htu: str, jti: str) -> ProofClaim:
    """Start recording a proof and return at once; :meth:`ProofClaim.result` says whether it
    was new. On Redis the ``SET NX`` is sent now and its reply read by ``result``, so the caller
    can verify the proof's signature while Redis answers; other backends ``cache.add`` in
    ``result``. Use it as a context manager: leaving the block reads (or drops the connection
    on) a reply nobody asked for.

    On Redis the record is written before the caller knows the signature is good, so a forged
    proof may leave one. It cannot refuse anyone else's proof: the key digests the thumbprint of
    the key the token is bound to (checked before this call), the normalised htu and the proof's
    ``jti``, and only the key holder chooses its ``jti``s, unpredictably. But it takes room, as
    every record does, and costs its sender no signature: a store that evicts records before
    their window ends can be made to drop a real proof's record, which is then accepted again.
    So Redis must not evict (``maxmemory-policy noeviction``: a full Redis refuses the write, and
    the request fails closed).
    """
    claim = ProofClaim(obo_settings.CACHE_ALIAS)
    try:
        timeout = obo_settings.DPOP_IAT_OFFSET + obo_settings.DPOP_IAT_LEEWAY
        redis = _redis_backends.get(claim.alias)
        if redis is not None:
            claim._send(redis, replay_key(jkt, htu, jti), timeout)
            return claim
        if claim.alias in _local_aliases:
            claim._local = (record_digest(jkt, htu, jti), timeout)
            return claim
        cache = caches[claim.alias]
        if isinstance(cache, RedisCache):
            _redis_backends[claim.alias] = cache
            claim._send(cache, replay_key(jkt, htu, jti), timeout)
        elif isinstance(cache, LocMemCache):  # it would cull live records: kept here instead
            _local_aliases.add(claim.alias)
            claim._local = (record_digest(jkt, htu, jti), timeout)
        else:
            claim._add = (cache, replay_key(jkt, htu, jti), timeout)
    except Exception as error:  # settings or backend broken: result() fails closed
        claim._error = error
    return claim


class ProofClaim:
    """One proof's replay record, asked for and not yet confirmed (see :func:`claim_proof`).

    On Redis, from the send to the read, a reply is owed on this thread's connection: it must be
    read, or the connection closed, before anything else is sent on it, or a stale ``OK`` would
    answer the thread's next proof. ``result`` and ``close`` settle the claim (once; a settled
    claim answers nothing), and a new claim first settles one its thread left open.
    """

    __slots__ = (
        "_add",
        "_command",
        "_connection",
        "_error",
        "_local",
        "_owed",
        "_pid",
        "_settled",
        "alias",
    )

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._add: tuple[Any, str, float] | None = None  # another backend's cache.add
        self._local: tuple[bytes, float] | None = None  # a LocMemCache alias: local_records.add
        self._command: list[bytes] = []  # the SET NX, packed once for the send and a resend
        self._connection: Any = None  # Redis: this thread's connection
        self._owed = False  # the SET NX went out and its reply is unread
        self._pid = os.getpid()
        self._error: Exception | None = None
        self._settled = False

    def _send(self, cache: RedisCache, key: str, timeout: float) -> None:
        """Send the SET NX; a failure closes the connection and leaves the one resend to
        :meth:`result`."""
        earlier = _held.owed.pop(self.alias, None)
        if earlier is not None:  # this module's callers settle every claim; kept in step anyway
            earlier.close()
        client = _clients.get(self.alias) or _redis_client(self.alias, cache)
        full_key = cache.make_key(key)  # a fixed-shape digest: nothing to validate
        self._command = [_pack_set_nx(full_key, max(1, int(timeout * 1000)))]
        self._connection = _connection(self.alias, client)
        try:
            self._connection.send_packed_command(self._command)
        except Exception:
            self._connection.disconnect()
            return
        self._owed = True
        _held.owed[self.alias] = self

    def result(self) -> bool:
        """True the first time this proof is seen, False for a replay; raises TenantUnavailable
        when the record cannot be written or checked (fail closed). Settles the claim."""
        try:
            if self._settled:
                raise RuntimeError("a settled replay claim has no answer")
            self._settled = True
            if self._error is not None:
                raise self._error
            if self._local is not None:
                return local_records.add(*self._local)
            if self._add is not None:
                cache, key, timeout = self._add
                return bool(cache.add(key, 1, timeout))
            return self._read_or_resend()
        except Exception as error:  # any backend failure (Redis down, DB error...) fails closed
            logger.warning("DPoP replay cache unavailable: %s", type(error).__name__)
            raise TenantUnavailable("DPoP replay detection is unavailable.") from error

    def _read_or_resend(self) -> bool:
        """The SET NX's reply. A connection that fails is closed (a half-read reply must never
        answer the next proof) and the command sent once more on a new one, since Redis may have
        closed an idle connection; a second failure propagates. A resent command whose first
        attempt did reach Redis finds its own record and refuses the proof: closed, not open."""
        connection = self._connection
        if self._owed:
            try:
                return self._read()
            except Exception:
                connection.disconnect()
        try:
            connection.send_packed_command(self._command)
            return connection.read_response() is not None
        except Exception:
            connection.disconnect()
            raise

    def _read(self) -> bool:
        """Read the owed reply: b"OK" when the key was set, nil when it existed."""
        self._owed = False
        if _held.owed.get(self.alias) is self:
            del _held.owed[self.alias]
        if self._pid != os.getpid():  # forked while owed: the parent's socket is not ours
            raise ConnectionError("the reply is owed to another process")
        return self._connection.read_response() is not None

    def close(self) -> None:
        """Settle without an answer: read and drop a reply still owed, or close the connection
        when that fails, so the thread's next proof gets its own reply."""
        self._settled = True
        if not self._owed:
            return
        try:
            self._read()
        except Exception:  # the answer is not wanted; only the connection's state matters
            self._connection.disconnect()
        except BaseException:  # interrupted mid-read: the reply may still arrive later
            self._connection.disconnect()
            raise

    def __enter__(self) -> ProofClaim:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ReplayStoreFull(Exception):
    """:class:`LocalRecords` holds MAX_LOCAL_RECORDS live records: a new proof is refused."""


class LocalRecords:
    """Replay records kept in this process: record digest -> expiry (``time.time()``).

    Records are never evicted before they expire: when the store holds MAX_LOCAL_RECORDS live
    records a new proof raises :class:`ReplayStoreFull` (the request fails closed, 503) and a
    replayed one is still refused. Expiries are wall-clock, as the ``iat`` check is, so a clock
    that steps back keeps records longer, never shorter. Every record lives the same window (a
    settings change clears the store), so they expire in the order they were added: each
    :meth:`add` first drops up to two expired records from the front of that order. That keeps
    up with the one record it adds, and a store still full afterwards holds only live records.
    """

    def __init__(self) -> None:
        self._expiries: dict[bytes, float] = {}
        self._order: deque[bytes] = deque()  # the keys of _expiries, oldest first
        self._lock = threading.Lock()
        self._warned = False
        os.register_at_fork(after_in_child=self._after_fork)

    def add(self, digest: bytes, timeout: float) -> bool:
        """Record a proof for ``timeout`` seconds: True the first time, False while recorded."""
        now = time.time()
        with self._lock:
            self._purge(now, 2)
            expiry = self._expiries.get(digest)
            if expiry is not None and expiry > now:
                return False
            if expiry is None:  # else expired but not yet purged: it keeps its place
                if len(self._expiries) >= MAX_LOCAL_RECORDS:  # the oldest is live: all are
                    self._refuse()
                self._order.append(digest)
            self._expiries[digest] = now + timeout
            return True

    def expiry(self, digest: bytes) -> float | None:
        """When the record ``digest`` expires, if it is held (expired or not)."""
        return self._expiries.get(digest)

    def clear(self) -> None:
        with self._lock:
            self._expiries.clear()
            self._order.clear()
            self._warned = False

    def __len__(self) -> int:
        return len(self._expiries)

    def _purge(self, now: float, most: int) -> None:
        """Drop up to ``most`` expired records from the front; stop at the first live one."""
        order, expiries = self._order, self._expiries
        while most > 0 and order:
            expiry = expiries.get(order[0])
            if expiry is not None and expiry > now:
                return
            expiries.pop(order.popleft(), None)
            most -= 1

    def _refuse(self) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "DPoP replay store full: %d live records in this process; DPoP requests are "
                "refused (503) until records expire. Point CACHE_ALIAS at Redis (with "
                "maxmemory-policy noeviction).",
                len(self._expiries),
            )
        raise ReplayStoreFull()

    def _after_fork(self) -> None:
        """A lock another thread held at the fork would never be released in the child. The
        parent's records stay: a proof it accepted is still refused here."""
        self._lock = threading.Lock()


#: The records of LocMemCache aliases (see :class:`LocalRecords`).
local_records = LocalRecords()


def _pack_set_nx(key: str, ttl_ms: int) -> bytes:
    """``SET key 1 NX PX ttl_ms`` as RESP (requests are the same bytes for RESP2 and RESP3),
    written directly: redis-py's generic packer took about 5 µs a call, ten times this."""
    raw = key.encode("utf-8")
    ttl = b"%d" % ttl_ms
    return b"*6\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nPX\r\n$%d\r\n%b\r\n" % (
        len(raw),
        raw,
        len(ttl),
        ttl,
    )


def _redis_client(alias: str, cache: RedisCache) -> Any:
    """The backend's own write client (its connection pool), kept for the life of the process;
    redis-py's pool reconnects after a fork or a dropped connection by itself."""
    with _clients_lock:
        client = _clients.get(alias)
        if client is None:
            client = _clients[alias] = cache._cache.get_client(write=True)
        return client


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
    """Drop the kept Redis clients and the local records (settings changed: CACHES, CACHE_ALIAS
    or the window may differ); each thread's connection is closed and replaced at its next use."""
    global _generation
    with _clients_lock:
        _clients.clear()
        _redis_backends.clear()
        _local_aliases.clear()
        local_records.clear()
        _generation += 1


def _caches_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        forget_clients()


on_reload(forget_clients)
setting_changed.connect(_caches_changed, dispatch_uid="django_auth0_obo.replay.caches")

"""The exchanged-token cache: ``ExchangedToken`` rows, encrypted, with single-flight misses.

A hit is one indexed SELECT (the hit counter is batched, see :class:`HitCounter`), or none: each
process keeps the decrypted tokens of recent hits for ``TOKEN_MEMO_TTL`` seconds (a bounded LRU).
Revoking rows (:func:`revoke_tokens`, the admin's action) clears this process's memo and changes a
*generation* value in the shared cache (``CACHE_ALIAS``); every process compares it at most once a
:data:`GENERATION_CHECK_INTERVAL` and drops its memo when it changed, so a revocation reaches every
worker within that interval (with a per-process cache such as local memory: within
``TOKEN_MEMO_TTL``). A process that cannot read the generation does not use its memo. A miss makes
one call to the tenant however many threads and processes ask at once:

- within a process, the first caller for a key becomes the *leader* and the others wait for its
  result (a future per key);
- across processes, the leader first claims the key in the database by inserting a *lease* row
  (the unique ``key`` column makes the insert the arbiter on every database, SQLite included);
  losers poll that row until it holds a token, or until the lease lapses and they may claim it.

If the database fails, the exchange goes on uncached and one warning is logged. Failures are
never cached. No raw token is ever written: the key is a SHA-256 and the issued token is
Fernet-encrypted (:mod:`django_auth0_obo.crypto`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django_auth0_obo import transactions
from django_auth0_obo.conf import obo_settings, on_reload
from django_auth0_obo.crypto import DecryptionError, decrypt_token, encrypt_token
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.ttl_memo import TtlMemo

logger = logging.getLogger("django_auth0_obo")

#: Hit counts are written at most this often per process (seconds).
HIT_FLUSH_INTERVAL = 1.0
#: Polling of another process's lease: first and longest pause, seconds.
POLL_FIRST, POLL_MAX = 0.01, 0.2
#: Decrypted tokens kept per process (see the module docstring).
MEMO_SIZE = 10_000
#: How often a process compares the shared revocation generation (seconds): the revocation bound.
GENERATION_CHECK_INTERVAL = 1.0
GENERATION_KEY = "auth0_obo:token_cache:generation"


@dataclass(frozen=True)
class IssuedToken:
    """An exchanged token as the cache keeps it (``passthrough`` is returned, never stored)."""

    access_token: str
    expires_at: int
    cached_until: int
    grant: str
    audience: str = ""
    scope: str = ""
    token_type: str = ""
    issued_token_type: str = ""
    subject: str = ""
    actor: str = ""
    org_id: str = ""
    passthrough: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"<IssuedToken grant={self.grant} audience={self.audience!r} exp={self.expires_at}>"


@dataclass(frozen=True)
class Lookup:
    """What :func:`get_or_fetch` produced and whether the tenant was spared a call."""

    token: IssuedToken
    cache_hit: bool


def normalize_scope(scope: str | None) -> str:
    """The scope set as a canonical string: unique, sorted, space-separated."""
    return " ".join(sorted(set((scope or "").split())))


def cache_key(**parts: Any) -> str:
    """SHA-256 over the JSON of ``parts`` (sorted): the row's ``key``; no part is stored."""
    material = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def get_or_fetch(key: str, fetch: Callable[[], IssuedToken]) -> Lookup:
    """Serve ``key`` from the cache, or call ``fetch`` once for all concurrent askers."""
    remembered = memo.get(key)
    if remembered is not None:
        return Lookup(remembered, True)
    attempt = _Attempt(key)
    hit = attempt.read()
    if hit is not None:
        return Lookup(hit, True)
    future, leader = _inflight.join(key)
    if not leader:
        return Lookup(future.result(), True)
    try:
        result = attempt.lead(fetch)
    except BaseException as exc:
        future.set_exception(exc)
        raise
    else:
        future.set_result(result.token)
        return result
    finally:
        _inflight.leave(key)


def revoke_tokens(queryset: Any) -> int:
    """Delete the given ``ExchangedToken`` rows and make every process forget them; return how
    many rows were deleted. Workers stop serving them within :data:`GENERATION_CHECK_INTERVAL`."""
    deleted, _ = transactions.run_committed(queryset.db, queryset.delete)
    memo.revoke()
    return int(deleted)


def purge_expired_tokens(batch_size: int = 1000, dry_run: bool = False) -> int:
    """Delete rows no longer served (and lapsed leases) in batches; return how many."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    expired = ExchangedToken.objects.filter(cached_until__lte=timezone.now())
    if dry_run:
        return expired.count()
    total = 0
    while True:
        ids = list(expired.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        deleted, _ = ExchangedToken.objects.filter(pk__in=ids).delete()
        total += deleted
        if len(ids) < batch_size:
            return total


def flush_hits() -> int:
    """Write the batched hit counts now (tests, shutdown hooks); return the hits written."""
    return hit_counter.flush()


class _InFlight:
    """One future per key being fetched in this process: the first asker leads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, Future[IssuedToken]] = {}

    def join(self, key: str) -> tuple[Future[IssuedToken], bool]:
        with self._lock:
            future = self._futures.get(key)
            if future is not None:
                return future, False
            future = self._futures[key] = Future()
            return future, True

    def leave(self, key: str) -> None:
        with self._lock:
            self._futures.pop(key, None)


_inflight = _InFlight()


class HitCounter:
    """Batched ``hit_count``/``last_used_at`` updates: one UPDATE per flush, not per hit.

    A per-hit UPDATE would double the queries of a hit and, on SQLite, take the write lock each
    time. Counts are flushed by the first hit after :data:`HIT_FLUSH_INTERVAL` seconds (a single
    ``UPDATE ... SET hit_count = hit_count + CASE key ... END``), so ``last_used_at`` is exact to
    within that interval and a crashed process loses at most that many seconds of counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], int] = {}
        self._last_flush = time.monotonic()

    def record(self, alias: str, key: str) -> None:
        with self._lock:
            self._pending[alias, key] = self._pending.get((alias, key), 0) + 1
            due = time.monotonic() - self._last_flush >= HIT_FLUSH_INTERVAL
        if due:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        by_alias: dict[str, dict[str, int]] = {}
        for (alias, key), count in pending.items():
            by_alias.setdefault(alias, {})[key] = count
        written = 0
        now = timezone.now()
        for alias, counts in by_alias.items():
            increment = Case(*(When(key=k, then=Value(n)) for k, n in counts.items()), default=0)
            rows = ExchangedToken.objects.using(alias).filter(key__in=list(counts))
            update = functools.partial(
                rows.update, hit_count=F("hit_count") + increment, last_used_at=now
            )
            try:  # never in the caller's transaction: its row locks would last the request
                transactions.run_committed(alias, update, one_statement=True)
            except DatabaseError as exc:
                logger.info("Could not record cache hits (%s).", type(exc).__name__)
                continue
            written += sum(counts.values())
        return written

    def discard(self) -> None:
        with self._lock:
            self._pending.clear()


hit_counter = HitCounter()


class TokenMemo:
    """Decrypted tokens of recent hits in this process, dropped when the shared generation moves.

    An entry lives ``TOKEN_MEMO_TTL`` seconds at most and never past its token's serving time.
    The generation (a random value under :data:`GENERATION_KEY` in ``CACHE_ALIAS``) is read at
    most once per :data:`GENERATION_CHECK_INTERVAL`; a changed or unreadable value empties the
    memo, and an unreadable one keeps it off until the cache answers again. A token is kept only
    if the generation has not moved since before the SELECT that read it, so a row read just
    before a revocation is not memoized after the memo was emptied for it.
    """

    def __init__(self) -> None:
        self._entries: TtlMemo[str, tuple[IssuedToken, str]] = TtlMemo(MEMO_SIZE)
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._checked_at = -GENERATION_CHECK_INTERVAL

    def get(self, key: str) -> IssuedToken | None:
        if not obo_settings.TOKEN_MEMO_TTL or not self._current():
            return None
        entry = self._entries.get(key, time.monotonic())
        if entry is None:
            return None
        token, alias = entry
        hit_counter.record(alias, key)
        return token

    @property
    def generation(self) -> str | None:
        """The generation as this process last read it: taken before the SELECT of a token
        that :meth:`put` may keep."""
        return self._generation

    def put(
        self, key: str, token: IssuedToken, alias: str, margin: float, generation: str | None
    ) -> None:
        """Keep ``token``, read under ``generation``, unless the generation has moved since: a
        row read before a revocation must not outlive it here."""
        ttl = float(obo_settings.TOKEN_MEMO_TTL)
        if not ttl or not self._current():
            return
        serving = token.cached_until - margin - time.time()
        if serving <= 0:
            return
        with self._lock:  # the generation check clears entries under this lock too
            if self._generation == generation:
                self._entries.put(key, (token, alias), time.monotonic() + min(ttl, serving))

    def revoke(self) -> None:
        """Move the shared generation so other processes forget their entries, then forget
        every entry here and read the new generation on next use (refusing older rows' puts)."""
        try:
            caches[obo_settings.CACHE_ALIAS].set(GENERATION_KEY, os.urandom(8).hex(), None)
        except Exception as error:  # the memo TTL still bounds how long others serve
            logger.warning(
                "Could not publish a token revocation to the shared cache (%s); other workers "
                "stop serving the revoked tokens within TOKEN_MEMO_TTL.",
                type(error).__name__,
            )
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        with self._lock:
            self._checked_at = -GENERATION_CHECK_INTERVAL

    def __len__(self) -> int:
        return len(self._entries)

    def _current(self) -> bool:
        """Whether memo entries may be used: the generation is known and was checked lately."""
        now = time.monotonic()
        if now - self._checked_at < GENERATION_CHECK_INTERVAL:
            return self._generation is not None
        with self._lock:
            if now - self._checked_at < GENERATION_CHECK_INTERVAL:
                return self._generation is not None
            self._checked_at = now
            try:
                generation = str(caches[obo_settings.CACHE_ALIAS].get(GENERATION_KEY, ""))
            except Exception as error:  # fail closed: no memo while revocations cannot be seen
                logger.warning("Token memo off: cache unavailable (%s).", type(error).__name__)
                generation = None
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation
            return generation is not None


memo = TokenMemo()
on_reload(memo.clear)
os.register_at_fork(after_in_child=lambda: setattr(memo, "_lock", threading.Lock()))


class CacheRow(NamedTuple):
    """One ``ExchangedToken`` row as a lookup reads it (times as epoch seconds, text never None)."""

    id: int
    encrypted_token: str
    expires_at: float
    cached_until: float
    scope: str
    token_type: str
    issued_token_type: str
    grant: str
    audience: str

    @classmethod
    def from_db(cls, values: tuple[Any, ...]) -> CacheRow:
        id_, encrypted, expires_at, cached_until, *texts = values
        return cls(
            id_,
            encrypted or "",
            _timestamp(expires_at),
            _timestamp(cached_until),
            *(text or "" for text in texts),
        )

    @property
    def is_lease(self) -> bool:
        """The row only reserves the key for an exchange in progress (no token yet)."""
        return not self.encrypted_token

    def servable(self, now: float, margin: float) -> bool:
        """A token that is still good for ``margin`` seconds after ``now``."""
        return not self.is_lease and self.cached_until - margin > now

    def lease_live(self, now: float) -> bool:
        """Another caller's claim that has not lapsed: wait for it rather than claim the key."""
        return self.is_lease and self.cached_until > now


#: Columns a lookup reads, in :class:`CacheRow`'s order.
_COLUMNS = CacheRow._fields
_select_sql: dict[str, str] = {}


def lookup_sql(alias: str) -> str:
    """The one statement of a hit: an equality lookup on the unique ``key`` index.

    Written once per database alias and run on a plain cursor: building and compiling the same
    ORM query on every hit would cost more than the query itself.
    """
    sql = _select_sql.get(alias)
    if sql is None:
        quote = connections[alias].ops.quote_name
        meta = ExchangedToken._meta
        columns = ", ".join(quote(_column(name)) for name in _COLUMNS)
        key_column = quote(_column("key"))
        sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {key_column} = %s"  # noqa: S608 - names from the model, the value is a parameter
        _select_sql[alias] = sql
    return sql


def _column(name: str) -> str:
    """The database column of an ``ExchangedToken`` field."""
    column = ExchangedToken._meta.get_field(name).column  # type: ignore[union-attr]
    assert isinstance(column, str)
    return column


def _timestamp(value: Any) -> float:
    """Epoch seconds of a datetime column as the driver returns it (SQLite: a string)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if settings.USE_TZ and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


class _Attempt:
    """One caller's way through the cache; remembers whether the database failed."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.alias = router.db_for_write(ExchangedToken)
        self.db_ok = True
        self.margin = float(obo_settings.TOKEN_CACHE_REFRESH_MARGIN)
        #: Read before any SELECT: the memo keeps what they return only if it has not moved.
        self.generation = memo.generation

    # -- reads ---------------------------------------------------------------------------------

    def read(self) -> IssuedToken | None:
        """A servable cached token, or None (missing, stale, a lease, or the database failed)."""
        row = self._select()
        if row is None or row.is_lease:
            return None
        return self._serve(row)

    def _select(self) -> CacheRow | None:
        if not self.db_ok:
            return None
        try:
            with _savepoint(self.alias), connections[self.alias].cursor() as cursor:
                cursor.execute(lookup_sql(self.alias), [self.key])
                row = cursor.fetchone()
        except DatabaseError as exc:
            self._database_failed(exc)
            return None
        return None if row is None else CacheRow.from_db(row)

    def _serve(self, row: CacheRow) -> IssuedToken | None:
        if not row.servable(time.time(), self.margin):
            return None
        try:
            access_token = decrypt_token(row.encrypted_token)
        except DecryptionError:
            logger.warning(
                "A cached exchanged token cannot be decrypted (TOKEN_ENCRYPTION_KEYS rotated?); "
                "exchanging again."
            )
            self._write(lambda qs: qs.filter(pk=row.id).delete())
            return None
        hit_counter.record(self.alias, self.key)
        token = IssuedToken(
            access_token=access_token,
            expires_at=int(row.expires_at),
            cached_until=int(row.cached_until),
            grant=row.grant,
            audience=row.audience,
            scope=row.scope,
            token_type=row.token_type,
            issued_token_type=row.issued_token_type,
        )
        memo.put(self.key, token, self.alias, self.margin, self.generation)
        return token

    # -- the leader's path ---------------------------------------------------------------------

    def lead(self, fetch: Callable[[], IssuedToken]) -> Lookup:
        """Re-check, claim the key, fetch, store; or wait for the process holding the claim."""
        lease_seconds = 3 * float(obo_settings.HTTP_TIMEOUT) + 5
        give_up_at = time.monotonic() + lease_seconds + 5
        pause = POLL_FIRST
        while self.db_ok:
            row = self._select()
            if row is not None and not row.is_lease:
                hit = self._serve(row)
                if hit is not None:
                    return Lookup(hit, True)
            if row is None or not row.lease_live(time.time()):
                lease = self._claim(lease_seconds)
                if lease is not None:
                    return Lookup(self._fetch_and_store(lease, fetch), False)
            if not self.db_ok or time.monotonic() > give_up_at:
                break
            _wait(pause)
            pause = min(pause * 2, POLL_MAX)
        return Lookup(fetch(), False)

    def _claim(self, lease_seconds: float) -> int | None:
        """Delete a stale row and insert a lease; the pk of our lease, or None if beaten."""
        now = timezone.now()
        stale = (~Q(encrypted_token="") & Q(cached_until__lte=_after(now, self.margin))) | Q(
            encrypted_token="", cached_until__lte=now
        )
        lapse = _after(now, lease_seconds)

        def claim() -> ExchangedToken:
            qs = ExchangedToken.objects.using(self.alias)
            qs.filter(stale, key=self.key).delete()
            return qs.create(
                key=self.key, subject="", audience="", expires_at=lapse, cached_until=lapse
            )

        try:  # committed at once, whatever the caller's transaction: others must see the lease
            lease = transactions.run_committed(self.alias, claim)
        except IntegrityError:
            return None
        except DatabaseError as exc:
            self._database_failed(exc)
            return None
        return lease.pk

    def _fetch_and_store(self, lease: int, fetch: Callable[[], IssuedToken]) -> IssuedToken:
        def release(qs: Any) -> Any:
            return qs.filter(pk=lease, encrypted_token="").delete()

        try:
            token = fetch()
            if token.cached_until - self.margin <= time.time():
                self._write(release)  # too short-lived to be worth serving again
                return token
            values = _row_values(token)
        except BaseException:
            self._write(release)  # never leave others waiting on a lease nobody will fill
            raise
        stored = self._write(
            lambda qs: qs.filter(pk=lease, encrypted_token="").update(
                **values, created_at=timezone.now()
            )
        )
        if stored == 0:  # our lease lapsed or was revoked meanwhile: insert unless beaten
            stored = self._write(lambda qs: qs.create(key=self.key, **values))
        if stored:
            memo.put(self.key, token, self.alias, self.margin, self.generation)
        return token

    # -- plumbing ------------------------------------------------------------------------------

    def _write(self, operation: Callable[[Any], Any]) -> Any:
        if not self.db_ok:
            return None
        try:
            return transactions.run_committed(
                self.alias, lambda: operation(ExchangedToken.objects.using(self.alias))
            )
        except IntegrityError:
            return None
        except DatabaseError as exc:
            self._database_failed(exc)
            return None

    def _database_failed(self, exc: DatabaseError) -> None:
        if self.db_ok:
            self.db_ok = False
            logger.warning(
                "Exchanged-token cache unavailable (%s); exchanging without the cache.",
                type(exc).__name__,
            )


def _wait(seconds: float) -> None:
    """Pause between two looks at another process's lease."""
    time.sleep(seconds)


def _datetime(timestamp: float) -> datetime:
    """An aware UTC datetime, or a naive local one when ``USE_TZ`` is off (as Django expects)."""
    if settings.USE_TZ:
        return datetime.fromtimestamp(timestamp, UTC)
    return datetime.fromtimestamp(timestamp)  # naive local time: what USE_TZ=False stores


def _row_values(token: IssuedToken) -> dict[str, Any]:
    return {
        "grant": token.grant[:32],
        "subject": token.subject[:255],
        "actor": token.actor[:255],
        "audience": token.audience[:255],
        "scope": token.scope,
        "org_id": token.org_id[:255],
        "token_type": token.token_type[:32],
        "issued_token_type": token.issued_token_type[:255],
        "encrypted_token": encrypt_token(token.access_token),
        "expires_at": _datetime(token.expires_at),
        "cached_until": _datetime(token.cached_until),
        "hit_count": 0,
        "last_used_at": None,
    }


def _after(moment: datetime, seconds: float) -> datetime:
    return _datetime(moment.timestamp() + seconds)


@contextlib.contextmanager
def _savepoint(alias: str) -> Iterator[None]:
    """A savepoint when inside the caller's transaction, so a failed read cannot doom it."""
    if connections[alias].in_atomic_block:
        with transaction.atomic(using=alias):
            yield
    else:
        yield

"""The exchanged-token cache: ``ExchangedToken`` rows, encrypted, with single-flight misses.

A hit is one indexed SELECT (the hit counter is batched, see :class:`HitCounter`). A miss makes
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
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django_auth0_obo.conf import obo_settings
from django_auth0_obo.crypto import DecryptionError, decrypt_token, encrypt_token
from django_auth0_obo.models import ExchangedToken

logger = logging.getLogger("django_auth0_obo")

#: Hit counts are written at most this often per process (seconds).
HIT_FLUSH_INTERVAL = 1.0
#: Polling of another process's lease: first and longest pause, seconds.
POLL_FIRST, POLL_MAX = 0.01, 0.2


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
            try:
                with _savepoint(alias):
                    ExchangedToken.objects.using(alias).filter(key__in=list(counts)).update(
                        hit_count=F("hit_count") + increment, last_used_at=now
                    )
            except DatabaseError as exc:
                logger.info("Could not record cache hits (%s).", type(exc).__name__)
                continue
            written += sum(counts.values())
        return written

    def discard(self) -> None:
        with self._lock:
            self._pending.clear()


hit_counter = HitCounter()

#: Columns a lookup reads, in the order ``_serve`` unpacks them.
_COLUMNS = (
    "id",
    "encrypted_token",
    "expires_at",
    "cached_until",
    "scope",
    "token_type",
    "issued_token_type",
    "grant",
    "audience",
)
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

    # -- reads ---------------------------------------------------------------------------------

    def read(self) -> IssuedToken | None:
        """A servable cached token, or None (missing, stale, a lease, or the database failed)."""
        row = self._select()
        if row is None or not row[1]:
            return None
        return self._serve(row)

    def _select(self) -> tuple[Any, ...] | None:
        if not self.db_ok:
            return None
        try:
            with _savepoint(self.alias), connections[self.alias].cursor() as cursor:
                cursor.execute(lookup_sql(self.alias), [self.key])
                row = cursor.fetchone()
        except DatabaseError as exc:
            self._database_failed(exc)
            return None
        if row is None:
            return None
        pk, encrypted, expires_at, cached_until, *texts = row
        return (
            pk,
            encrypted or "",
            _timestamp(expires_at),
            _timestamp(cached_until),
            *(text or "" for text in texts),
        )

    def _serve(self, row: tuple[Any, ...]) -> IssuedToken | None:
        pk, encrypted, expires_at, cached_until, scope, token_type, issued_type, grant, aud = row
        if cached_until - self.margin <= time.time():
            return None
        try:
            access_token = decrypt_token(encrypted)
        except DecryptionError:
            logger.warning(
                "A cached exchanged token cannot be decrypted (TOKEN_ENCRYPTION_KEYS rotated?); "
                "exchanging again."
            )
            self._write(lambda qs: qs.filter(pk=pk).delete())
            return None
        hit_counter.record(self.alias, self.key)
        return IssuedToken(
            access_token=access_token,
            expires_at=int(expires_at),
            cached_until=int(cached_until),
            grant=grant,
            audience=aud,
            scope=scope,
            token_type=token_type,
            issued_token_type=issued_type,
        )

    # -- the leader's path ---------------------------------------------------------------------

    def lead(self, fetch: Callable[[], IssuedToken]) -> Lookup:
        """Re-check, claim the key, fetch, store; or wait for the process holding the claim."""
        lease_seconds = 3 * float(obo_settings.HTTP_TIMEOUT) + 5
        give_up_at = time.monotonic() + lease_seconds + 5
        pause = POLL_FIRST
        while self.db_ok:
            row = self._select()
            if row is not None and row[1]:
                hit = self._serve(row)
                if hit is not None:
                    return Lookup(hit, True)
            lease_live = row is not None and not row[1] and row[3] > time.time()
            if not lease_live:
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
        try:
            with _savepoint(self.alias, always=True):
                qs = ExchangedToken.objects.using(self.alias)
                qs.filter(stale, key=self.key).delete()
                lease = qs.create(
                    key=self.key, subject="", audience="", expires_at=lapse, cached_until=lapse
                )
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
            self._write(lambda qs: qs.create(key=self.key, **values))
        return token

    # -- plumbing ------------------------------------------------------------------------------

    def _write(self, operation: Callable[[Any], Any]) -> Any:
        if not self.db_ok:
            return None
        try:
            with _savepoint(self.alias, always=True):
                return operation(ExchangedToken.objects.using(self.alias))
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
def _savepoint(alias: str, *, always: bool = False) -> Iterator[None]:
    """A savepoint when inside the caller's transaction (a cache error must not doom it);
    with ``always``, a transaction of our own otherwise (multi-statement writes)."""
    if always or connections[alias].in_atomic_block:
        with transaction.atomic(using=alias):
            yield
    else:
        yield

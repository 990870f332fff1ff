"""DPoP replay detection on Redis: one ``SET NX PX`` on a client kept for the process.

They run on the Redis ``CACHE_URL`` names, else on database 4 of the local server
(``services.redis_url``). Where no Redis answers (a laptop) they are skipped; under
``REQUIRE_SERVICES=1`` (CI) they run and fail instead. A dead Redis is a real closed port, not
a mock.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_auth0_obo import dpop, replay
from django_auth0_obo.exceptions import InvalidDPoPProof, TenantUnavailable
from django_auth0_obo.testing import DPoPKey
from django_auth0_obo.testing.jws import tamper_signature
from tests import services


@pytest.fixture(autouse=True)
def _redis_server() -> None:
    services.require_server("redis")


REDIS_URL = services.redis_url()
ALIAS = "dpop_replay_redis_one_trip"


def redis_caches(location: str, prefix: str) -> dict:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        ALIAS: {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": prefix,
        },
    }


@pytest.fixture
def redis_replay(settings):
    prefix = f"replay-test-{uuid.uuid4().hex}"
    with override_settings(CACHES=redis_caches(REDIS_URL, prefix)):
        settings.AUTH0_OBO = {**(settings.AUTH0_OBO or {}), "CACHE_ALIAS": ALIAS}
        yield caches[ALIAS]
        replay.forget_clients()


def test_a_proof_is_accepted_once_then_refused(redis_replay):
    jti = uuid.uuid4().hex
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    # another key or another URL is another proof
    assert replay.remember_proof("other-jkt", "https://api.example.com/x", jti) is True
    assert replay.remember_proof("jkt", "https://api.example.com/y", jti) is True


def test_the_record_uses_the_caches_own_key_and_expires_with_the_iat_window(redis_replay):
    jti = uuid.uuid4().hex
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti)
    key = replay.replay_key("jkt", "https://api.example.com/x", jti)
    client = replay.kept_client(ALIAS)
    full_key = redis_replay.make_key(key)
    assert full_key.startswith(redis_replay.key_prefix)
    window_ms = (300 + 30) * 1000  # DPOP_IAT_OFFSET + DPOP_IAT_LEEWAY
    assert 0 < client.pttl(full_key) <= window_ms
    assert redis_replay.get(key) == 1  # readable through the cache API as well


def test_a_record_under_a_non_ascii_key_prefix_is_the_caches_own_key(settings):
    with override_settings(CACHES=redis_caches(REDIS_URL, f"préfixe-€-{uuid.uuid4().hex}")):
        settings.AUTH0_OBO = {**(settings.AUTH0_OBO or {}), "CACHE_ALIAS": ALIAS}
        try:
            jti = uuid.uuid4().hex
            assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
            assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
            key = replay.replay_key("jkt", "https://api.example.com/x", jti)
            assert caches[ALIAS].get(key) == 1
        finally:
            replay.forget_clients()


def test_one_client_serves_every_call_in_the_process(redis_replay):
    replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
    first = replay.kept_client(ALIAS)
    for _ in range(5):
        replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
    assert replay.kept_client(ALIAS) is first


def test_an_unreachable_redis_refuses_the_proof(settings):
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with override_settings(CACHES=redis_caches(dead, "dead")):
        settings.AUTH0_OBO = {**(settings.AUTH0_OBO or {}), "CACHE_ALIAS": ALIAS}
        try:
            with pytest.raises(TenantUnavailable):
                replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
        finally:
            replay.forget_clients()


def test_other_backends_still_use_cache_add(settings, tmp_path):
    files = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache"}
    with override_settings(CACHES={"default": {**files, "LOCATION": str(tmp_path)}}):
        settings.AUTH0_OBO = {**(settings.AUTH0_OBO or {}), "CACHE_ALIAS": "default"}
        jti = uuid.uuid4().hex
        assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
        assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
        assert caches["default"].get(replay.replay_key("jkt", "https://api.example.com/x", jti))
        assert replay.kept_client(ALIAS) is None


def test_the_alias_turned_into_another_backend_is_followed(settings):
    """The Redis backend is remembered per alias; a CACHES change must drop it, or proofs
    would still be recorded on the Redis the settings no longer name."""
    settings.AUTH0_OBO = {**(settings.AUTH0_OBO or {}), "CACHE_ALIAS": ALIAS}
    jti = uuid.uuid4().hex
    with override_settings(CACHES=redis_caches(REDIS_URL, f"before-{uuid.uuid4().hex}")):
        assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
        assert replay.kept_client(ALIAS) is not None
    local = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        ALIAS: {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": jti},
    }
    with override_settings(CACHES=local):
        assert replay.kept_client(ALIAS) is None
        assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True  # new store
        digest = replay.record_digest("jkt", "https://api.example.com/x", jti)
        assert replay.local_records.expiry(digest) is not None  # LocMemCache: kept in-process
        assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    replay.forget_clients()


def _held_connection():
    return replay.held_connection(ALIAS)


def test_a_connection_closed_by_redis_is_replaced_and_replays_are_still_refused(redis_replay):
    jti = uuid.uuid4().hex
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
    connection = _held_connection()
    connection.send_command("CLIENT", "ID")
    connection_id = connection.read_response()
    assert replay.kept_client(ALIAS).client_kill_filter(_id=connection_id) == 1
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    assert replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex) is True


def test_each_thread_sends_on_its_own_connection(redis_replay):
    replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
    seen = []

    def other() -> None:
        replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
        seen.append(_held_connection())

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen
    assert seen[0] is not _held_connection()


def test_forgetting_clients_replaces_the_threads_connection(redis_replay):
    jti = uuid.uuid4().hex
    replay.remember_proof("jkt", "https://api.example.com/x", jti)
    first = _held_connection()
    replay.forget_clients()
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    assert _held_connection() is not first


def test_a_redis_that_stops_answering_mid_process_refuses_the_proof(settings):
    with override_settings(CACHES=redis_caches(REDIS_URL, f"stop-{uuid.uuid4().hex}")):
        settings.AUTH0_OBO = {**(settings.AUTH0_OBO or {}), "CACHE_ALIAS": ALIAS}
        try:
            assert replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
            connection = _held_connection()
            connection.disconnect()
            connection.port = 1  # nothing listens there: reconnecting fails, as a dead Redis
            with pytest.raises(TenantUnavailable):
                replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
        finally:
            replay.forget_clients()


# Two steps: the SET NX is sent before the signature check and its reply read after.

PROOF_URL = "https://api.example.com/x"
TOKEN = "header.payload.signature"


def _verify(key: DPoPKey, proof: str) -> str:
    return dpop.verify_proof(proof, method="GET", url=PROOF_URL, access_token=TOKEN, jkt=key.jkt)


def _fresh_proof(key: DPoPKey) -> str:
    return key.proof("GET", PROOF_URL, access_token=TOKEN)


def _accepted_once(key: DPoPKey) -> None:
    """A fresh proof is accepted, and the same proof again refused as a replay."""
    valid = _fresh_proof(key)
    assert _verify(key, valid) == key.jkt
    with pytest.raises(InvalidDPoPProof, match="replayed"):
        _verify(key, valid)


def test_a_forged_proof_leaves_the_connection_in_step(redis_replay, dpop_key):
    """The forged proof's SET NX went out; its reply must not answer the next proof (which
    would then accept the replay below with the valid proof's own ``OK``)."""
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        _verify(dpop_key, tamper_signature(_fresh_proof(dpop_key)))
    connection = _held_connection()
    _accepted_once(dpop_key)
    assert _held_connection() is connection  # the reply was read, not the connection dropped


def test_forged_and_valid_proofs_alternating_each_get_their_own_answer(redis_replay, dpop_key):
    for _ in range(5):
        with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
            _verify(dpop_key, tamper_signature(_fresh_proof(dpop_key)))
        _accepted_once(dpop_key)


def test_a_claim_left_open_is_settled_before_the_thread_sends_again(redis_replay):
    jti = uuid.uuid4().hex
    replay.claim_proof("jkt", "https://api.example.com/x", jti)  # never settled, on purpose
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    assert replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex) is True


def test_a_claim_answers_once(redis_replay):
    with replay.claim_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex) as claim:
        assert claim.result() is True
        with pytest.raises(TenantUnavailable):
            claim.result()


def _fail_reads(monkeypatch, connection, times: int) -> list[int]:
    """Make the next ``times`` reads on ``connection`` fail as a lost connection would (a fault
    a healthy Redis cannot be made to produce on cue); return the list of failed reads."""
    failed: list[int] = []
    original = connection.read_response

    def read_response(*args, **kwargs):
        if len(failed) < times:
            failed.append(1)
            raise ConnectionError("injected: connection lost before the reply")
        return original(*args, **kwargs)

    monkeypatch.setattr(connection, "read_response", read_response)
    return failed


def test_a_reply_lost_after_the_send_is_resent_and_a_replay_still_refused(
    redis_replay, monkeypatch
):
    jti = uuid.uuid4().hex
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
    failed = _fail_reads(monkeypatch, _held_connection(), times=1)
    with replay.claim_proof("jkt", "https://api.example.com/x", jti) as claim:
        assert claim.result() is False  # resent on a new connection, which finds the record
    assert failed == [1]
    assert replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex) is True


def test_a_fresh_proof_whose_reply_is_lost_is_refused_not_accepted_twice(redis_replay, monkeypatch):
    """The first SET reached Redis: the resend finds that record and refuses the proof —
    closed, not open — and the proof is refused again when replayed."""
    jti = uuid.uuid4().hex
    replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex)
    _fail_reads(monkeypatch, _held_connection(), times=1)
    with replay.claim_proof("jkt", "https://api.example.com/x", jti) as claim:
        first = claim.result()
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    assert first is False


def test_a_reply_lost_twice_fails_closed_and_the_thread_recovers(redis_replay, monkeypatch):
    jti = uuid.uuid4().hex
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
    failed = _fail_reads(monkeypatch, _held_connection(), times=2)
    with pytest.raises(TenantUnavailable):
        replay.remember_proof("jkt", "https://api.example.com/x", jti)
    assert failed == [1, 1]
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    assert replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex) is True


def test_a_connection_killed_between_send_and_read_never_accepts_a_replay(redis_replay):
    """Redis drops the connection after the SET NX went out: a real fault, from the server."""
    jti = uuid.uuid4().hex
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
    connection = _held_connection()
    connection.send_command("CLIENT", "ID")
    connection_id = connection.read_response()
    with replay.claim_proof("jkt", "https://api.example.com/x", jti) as claim:
        assert replay.kept_client(ALIAS).client_kill_filter(_id=connection_id) == 1
        assert claim.result() is False
    assert replay.remember_proof("jkt", "https://api.example.com/x", uuid.uuid4().hex) is True


def test_a_forged_proof_whose_reply_is_lost_leaves_the_next_proof_its_own_answer(
    redis_replay, dpop_key, monkeypatch
):
    _verify(dpop_key, _fresh_proof(dpop_key))  # opens this thread's connection
    failed = _fail_reads(monkeypatch, _held_connection(), times=1)
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        _verify(dpop_key, tamper_signature(_fresh_proof(dpop_key)))
    assert failed == [1]  # the unwanted reply could not be read: the connection was dropped
    _accepted_once(dpop_key)


def test_one_proof_raced_by_many_threads_is_accepted_once(redis_replay):
    jti = uuid.uuid4().hex
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        with replay.claim_proof("jkt", "https://api.example.com/x", jti) as claim:
            barrier.wait()  # every thread has sent before any reads
            answer = claim.result()
        with lock:
            results.append(answer)

    workers = [threading.Thread(target=race) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(results) == [False] * (threads - 1) + [True]

"""DPoP replay detection on Redis: one ``SET NX PX`` on a client kept for the process.

Redis at 127.0.0.1:6379 is part of our test machines (the database number is taken from
``CACHE_URL`` when it names Redis); if it does not answer, these tests fail rather than skip.
A dead Redis is a real closed port, not a mock.
"""

from __future__ import annotations

import os
import uuid

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_auth0_obo import replay
from django_auth0_obo.exceptions import TenantUnavailable

CACHE_URL = os.environ.get("CACHE_URL", "")
REDIS_URL = CACHE_URL if CACHE_URL.startswith("redis://") else "redis://127.0.0.1:6379/4"
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


def test_other_backends_still_use_cache_add(settings):
    settings.AUTH0_OBO = {**(settings.AUTH0_OBO or {}), "CACHE_ALIAS": "default"}
    jti = uuid.uuid4().hex
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is True
    assert replay.remember_proof("jkt", "https://api.example.com/x", jti) is False
    assert replay.kept_client(ALIAS) is None


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
    import threading

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

"""DPoP replay records on a LocMemCache alias stay in the process (``replay.LocalRecords``).

Django's LocMemCache keeps at most MAX_ENTRIES (300 by default) and culls a third when full, so
any client sending 300 proofs of its own would get another client's record dropped and that
client's captured proof accepted again. Here no number of other proofs evicts a live record; a
store full of live records refuses new proofs (503) instead, and expired records make room.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from django_auth0_obo import replay
from django_auth0_obo.testing import DPoPKey, LocalTenant

pytestmark = pytest.mark.django_db

URL = "http://testserver/api/whoami"
PATH = "/api/whoami"
#: Django's default CACHES: one LocMemCache with MAX_ENTRIES 300.
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def locmem(auth0_tenant: LocalTenant, settings: Any) -> Any:
    """The local tenant, with the replay records on the default LocMemCache alias."""
    settings.CACHES = LOCMEM
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "CACHE_ALIAS": "default"}
    return settings


def _get(client: Any, token: str, proof: str) -> Any:
    return client.get(PATH, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)


def test_other_clients_proofs_never_evict_a_captured_proofs_record(
    locmem: Any, auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    captured = dpop_key.proof("GET", URL, token)
    assert _get(api_client, token, captured).status_code == 200
    assert _get(api_client, token, captured).status_code == 401

    attacker = DPoPKey.generate()
    own = auth0_tenant.mint(cnf_jkt=attacker.jkt, sub="auth0|attacker")
    for _ in range(400):  # past LocMemCache's MAX_ENTRIES: it would have culled a third
        assert _get(api_client, own, attacker.proof("GET", URL, own)).status_code == 200

    replayed = _get(api_client, token, captured)
    assert replayed.status_code == 401
    assert "replayed" in replayed.headers["WWW-Authenticate"]


def test_a_store_full_of_live_records_refuses_new_proofs_but_keeps_refusing_replays(
    locmem: Any,
    auth0_tenant: LocalTenant,
    dpop_key: DPoPKey,
    api_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(replay, "MAX_LOCAL_RECORDS", 3)
    caplog.set_level(logging.WARNING, logger="django_auth0_obo")
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    accepted = [dpop_key.proof("GET", URL, token) for _ in range(3)]
    assert [_get(api_client, token, p).status_code for p in accepted] == [200, 200, 200]

    fresh = [_get(api_client, token, dpop_key.proof("GET", URL, token)) for _ in range(3)]

    assert [r.status_code for r in fresh] == [503, 503, 503]  # fail closed, as a cache outage
    assert _get(api_client, token, accepted[0]).status_code == 401  # its record was kept
    assert len(replay.local_records) == 3
    full = [r for r in caplog.records if "replay store full" in r.getMessage()]
    assert len(full) == 1  # loud once, not once a request


def test_a_full_store_takes_new_proofs_again_once_records_expire(
    locmem: Any,
    auth0_tenant: LocalTenant,
    dpop_key: DPoPKey,
    api_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    locmem.AUTH0_OBO = {**locmem.AUTH0_OBO, "DPOP_IAT_OFFSET": 1, "DPOP_IAT_LEEWAY": 0}
    monkeypatch.setattr(replay, "MAX_LOCAL_RECORDS", 2)
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    for _ in range(2):
        assert _get(api_client, token, dpop_key.proof("GET", URL, token)).status_code == 200
    assert _get(api_client, token, dpop_key.proof("GET", URL, token)).status_code == 503

    time.sleep(1.1)  # the window: DPOP_IAT_OFFSET + DPOP_IAT_LEEWAY

    assert _get(api_client, token, dpop_key.proof("GET", URL, token)).status_code == 200
    assert len(replay.local_records) == 1  # the expired two purged


def test_expired_records_are_purged_as_new_ones_arrive() -> None:
    records = replay.LocalRecords()
    expiring = [bytes([number]) * 32 for number in range(5)]
    for digest in expiring:
        assert records.add(digest, 0.05) is True
    assert records.add(expiring[0], 0.05) is False  # live: a replay
    time.sleep(0.06)

    assert records.add(b"a" * 32, 60) is True
    assert len(records) == 1 + 3  # each add drops up to two expired records, oldest first
    assert records.add(expiring[4], 60) is True  # expired: accepted again, and live now
    assert len(records) == 2
    assert records.add(expiring[4], 60) is False
    assert records.add(b"b" * 32, 60) is True
    assert len(records) == 3  # nothing expired is left


def test_one_of_many_threads_adding_the_same_record_wins() -> None:
    records = replay.LocalRecords()
    start = threading.Barrier(8)
    results: list[bool] = []

    def add() -> None:
        start.wait()
        results.append(records.add(b"x" * 32, 60))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_the_records_are_forgotten_when_the_settings_change(
    locmem: Any, auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    assert _get(api_client, token, dpop_key.proof("GET", URL, token)).status_code == 200
    assert len(replay.local_records) == 1

    locmem.AUTH0_OBO = {**locmem.AUTH0_OBO, "DPOP_IAT_OFFSET": 60}  # the window may differ

    assert len(replay.local_records) == 0

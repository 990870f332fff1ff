"""A DPoP proof accepted by one process is refused by another when the replay cache is shared.

The second process is a real, separately started Python interpreter that configures Django on
its own and sends requests through ``Auth0Authentication`` (the example project's view) against
the same local tenant. The shared cache is Django's file-based cache on every machine, and the
cache ``CACHE_URL`` names (Redis in CI) when it is set (see ``tests/services.py``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_auth0_obo import dpop, replay
from django_auth0_obo.jose import b64url_decode
from django_auth0_obo.testing import DPoPKey, LocalTenant
from tests import services

pytestmark = pytest.mark.django_db

REPLAY_ALIAS = "dpop_replay_shared"
URL = "http://testserver/api/whoami"
PATH = "/api/whoami"
ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import importlib, json, sys

from django.conf import settings

data = json.load(sys.stdin)
project = importlib.import_module("testproject.settings")
conf = {name: getattr(project, name) for name in dir(project) if name.isupper()}
conf.update(
    CACHES=data["caches"],
    AUTH0_OBO=data["auth0_obo"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
)
settings.configure(**conf)

import django

django.setup()

from rest_framework.test import APIRequestFactory

from testproject.api.views import WhoAmIView

view = WhoAmIView.as_view()
results = []
for proof in data["proofs"]:
    request = APIRequestFactory().get(
        "/api/whoami", HTTP_AUTHORIZATION="DPoP " + data["token"], HTTP_DPOP=proof
    )
    response = view(request)
    challenge = response.get("WWW-Authenticate", "")
    results.append({"status": response.status_code, "challenge": challenge})
print(json.dumps(results))
"""


def _in_child_process(
    caches_setting: dict[str, Any], auth0_obo: dict[str, Any], token: str, proofs: list[str]
) -> list[dict[str, Any]]:
    """Send each proof with ``token`` from a freshly started interpreter; return the answers."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    payload = {"caches": caches_setting, "auth0_obo": auth0_obo, "token": token, "proofs": proofs}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _error(challenge: str) -> str | None:
    match = re.search(r'error="([^"]+)"', challenge)
    return match.group(1) if match else None


@pytest.mark.parametrize("cache_kind", services.SHARED_CACHES)
def test_a_proof_accepted_in_one_process_is_refused_in_another_with_a_shared_cache(
    auth0_tenant: LocalTenant,
    dpop_key: DPoPKey,
    api_client: Any,
    settings: Any,
    cache_kind: str,
    tmp_path: Path,
) -> None:
    shared = services.shared_cache(cache_kind, tmp_path)
    caches_setting = {**settings.CACHES, REPLAY_ALIAS: shared}
    auth0_obo = {**settings.AUTH0_OBO, "CACHE_ALIAS": REPLAY_ALIAS, "AUDIT": "off"}
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    first, second = (dpop_key.proof("GET", URL, access_token=token) for _ in range(2))

    # Override in a block, so the fixtures' cache clearing never flushes the shared cache.
    with override_settings(CACHES=caches_setting, AUTH0_OBO=auth0_obo):
        try:
            accepted_here = api_client.get(
                PATH, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=first
            )
            assert accepted_here.status_code == 200, accepted_here.content

            replayed, fresh = _in_child_process(caches_setting, auth0_obo, token, [first, second])

            assert replayed["status"] == 401
            assert _error(replayed["challenge"]) == "invalid_dpop_proof"
            assert "replayed" in replayed["challenge"]
            assert fresh["status"] == 200, fresh  # the other process works; only the replay fails

            back_here = api_client.get(PATH, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=second)
            assert back_here.status_code == 401
            assert "replayed" in back_here.headers["WWW-Authenticate"]
        finally:
            htu = dpop.normalize_htu(URL)
            for proof in (first, second):
                jti = json.loads(b64url_decode(proof.split(".")[1]))["jti"]
                caches[REPLAY_ALIAS].delete(replay.replay_key(dpop_key.jkt, htu, jti))


def test_with_a_per_process_cache_each_process_keeps_its_own_records(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, settings: Any
) -> None:
    """The reason for a shared cache (and for system check W001): locmem does not span processes,
    while within one process it does refuse the replay."""
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", URL, access_token=token)
    auth0_obo = {**settings.AUTH0_OBO, "AUDIT": "off"}
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CACHES = locmem
    settings.AUTH0_OBO = auth0_obo

    assert (
        api_client.get(PATH, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof).status_code == 200
    )
    again = api_client.get(PATH, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert again.status_code == 401
    [elsewhere] = _in_child_process(locmem, auth0_obo, token, [proof])
    assert elsewhere["status"] == 200

"""DPoP server nonces at this API (RFC 9449 §9) with DPOP_NONCE = True."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import dpop_nonce
from django_auth0_obo.checks import check_settings
from django_auth0_obo.testing import DPoPClient, DPoPKey, LocalTenant

pytestmark = pytest.mark.django_db

URL = "http://testserver/api/whoami"
PATH = "/api/whoami"
MIDDLEWARE = "django_auth0_obo.middleware.DPoPNonceMiddleware"


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> LocalTenant:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_NONCE": True}
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    return auth0_tenant


@pytest.fixture
def mid_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test from the middle of a nonce slot (the whole process's clock moves by under
    half a slot): a test that names the previous or the next slot must not see a slot boundary
    pass between issuing that nonce and the server checking it."""
    real = time.time
    now = real()
    middle = (now // dpop_nonce.WINDOW_SECONDS + 0.5) * dpop_nonce.WINDOW_SECONDS
    offset = middle - now
    monkeypatch.setattr(time, "time", lambda: real() + offset)


def _dpop(token: str, proof: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"DPoP {token}", "HTTP_DPOP": proof}


def test_a_proof_without_a_nonce_gets_use_dpop_nonce_and_a_nonce(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    response = api_client.get(PATH, **_dpop(token, dpop_key.proof("GET", URL, token)))

    assert response.status_code == 401
    assert 'DPoP algs="ES256", error="use_dpop_nonce"' in response.headers["WWW-Authenticate"]
    assert dpop_nonce.is_valid(response.headers["DPoP-Nonce"])


def test_the_retry_with_the_nonce_passes_and_gets_a_fresh_nonce(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    first = api_client.get(PATH, **_dpop(token, dpop_key.proof("GET", URL, token)))
    nonce = first.headers["DPoP-Nonce"]

    retry = api_client.get(PATH, **_dpop(token, dpop_key.proof("GET", URL, token, nonce=nonce)))
    assert retry.status_code == 200, retry.content
    assert dpop_nonce.is_valid(retry.headers["DPoP-Nonce"])


def test_a_replayed_proof_is_still_refused(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", URL, token, nonce=dpop_nonce.issue())

    assert api_client.get(PATH, **_dpop(token, proof)).status_code == 200
    replayed = api_client.get(PATH, **_dpop(token, proof))
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("why", "nonce"),
    [
        (
            "from two slots ago",
            lambda: dpop_nonce.issue(time.time() - 2 * dpop_nonce.WINDOW_SECONDS),
        ),
        ("from the future", lambda: dpop_nonce.issue(time.time() + dpop_nonce.WINDOW_SECONDS)),
        ("made up", lambda: "A" * dpop_nonce.NONCE_LENGTH),
        ("another server's", lambda: "s3rv3r-n0nce-fr0m-th3-t0k3n-3ndp"),
        ("empty", lambda: ""),
        ("not a string", lambda: 12345),
    ],
)
@pytest.mark.usefixtures("mid_slot")
def test_a_nonce_we_did_not_issue_recently_is_refused(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, why: str, nonce: Any
) -> None:
    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", URL, token, claims={"nonce": nonce()})
    response = api_client.get(PATH, **_dpop(token, proof))
    assert response.status_code == 401, why
    assert 'error="use_dpop_nonce"' in response.headers["WWW-Authenticate"], why
    assert "DPoP-Nonce" in response.headers, why


@pytest.mark.usefixtures("mid_slot")
def test_a_nonce_from_the_previous_slot_is_still_accepted(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    old = dpop_nonce.issue(time.time() - dpop_nonce.WINDOW_SECONDS)
    response = api_client.get(PATH, **_dpop(token, dpop_key.proof("GET", URL, token, nonce=old)))
    assert response.status_code == 200, response.content


def test_bad_proofs_are_not_answered_with_a_nonce_error(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    """The nonce is checked after htm, htu, iat, ath and the key binding: a proof wrong in any of
    those is told so, not asked for a nonce."""
    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("POST", URL, token)
    response = api_client.get(PATH, **_dpop(token, proof))
    assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]


def test_bearer_tokens_are_unaffected(tenant: LocalTenant, api_client: Any) -> None:
    response = api_client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {tenant.mint()}")
    assert response.status_code == 200
    assert "DPoP-Nonce" not in response.headers


def test_an_anonymous_401_already_offers_a_nonce(tenant: LocalTenant, api_client: Any) -> None:
    response = api_client.get(PATH)
    assert response.status_code == 401
    assert dpop_nonce.is_valid(response.headers["DPoP-Nonce"])


def test_off_by_default_no_nonce_needed_and_none_sent(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, settings: Any
) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    response = api_client.get(PATH, **_dpop(token, dpop_key.proof("GET", URL, token)))
    assert response.status_code == 200
    assert "DPoP-Nonce" not in response.headers


def test_the_test_client_helper_does_the_dance(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    client = DPoPClient(api_client, dpop_key, tenant.mint(cnf_jkt=dpop_key.jkt))

    assert client.get(PATH).status_code == 200
    assert client.post(PATH).status_code == 200
    assert client.nonce_retries == 1  # the first answer's nonce served every later request


def test_the_test_client_helper_works_without_nonces(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    client = DPoPClient(api_client, dpop_key, auth0_tenant.mint(cnf_jkt=dpop_key.jkt))
    assert client.get(PATH).status_code == 200
    assert client.nonce_retries == 0


def test_a_nonce_issued_by_another_worker_process_is_accepted(tenant: LocalTenant) -> None:
    code = (
        "import django; django.setup(); "
        "from django_auth0_obo import dpop_nonce; print(dpop_nonce.issue())"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    nonce = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert dpop_nonce.is_valid(nonce)


def test_another_secret_key_does_not_accept_our_nonces(settings: Any) -> None:
    nonce = dpop_nonce.issue()
    settings.SECRET_KEY = "another-project-" + "x" * 40
    assert not dpop_nonce.is_valid(nonce)


@given(st.text(max_size=64) | st.binary(max_size=40).map(lambda b: b.hex()))
def test_any_string_is_judged_without_raising(value: str) -> None:
    assert dpop_nonce.is_valid(value) in (True, False)


def test_checks_want_the_middleware_and_dpop(auth0_tenant: LocalTenant, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_NONCE": True, "DPOP_MODE": "disabled"}
    ids = {m.id for m in check_settings()}
    assert {"auth0_obo.E038", "auth0_obo.E039"} <= ids
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_MODE": "allowed"}
    assert not {"auth0_obo.E038", "auth0_obo.E039"} & {m.id for m in check_settings()}


def test_the_middleware_works_under_asgi(
    tenant: LocalTenant, dpop_key: DPoPKey, settings: Any
) -> None:
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    client = AsyncClient()
    first = async_to_sync(client.get)(
        PATH, headers={"Authorization": f"DPoP {token}", "DPoP": dpop_key.proof("GET", URL, token)}
    )
    assert first.status_code == 401
    nonce = first.headers["DPoP-Nonce"]
    proof = dpop_key.proof("GET", URL, token, nonce=nonce)
    second = async_to_sync(client.get)(
        PATH, headers={"Authorization": f"DPoP {token}", "DPoP": proof}
    )
    assert second.status_code == 200
    assert dpop_nonce.is_valid(second.headers["DPoP-Nonce"])


def test_verify_outside_drf_demands_the_nonce_too(tenant: LocalTenant, dpop_key: DPoPKey) -> None:
    from django_auth0_obo import verify
    from django_auth0_obo.exceptions import UseDPoPNonce

    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    with pytest.raises(UseDPoPNonce) as caught:
        verify(f"DPoP {token}", method="GET", url=URL, dpop=dpop_key.proof("GET", URL, token))
    assert 'error="use_dpop_nonce"' in caught.value.www_authenticate
    proof = dpop_key.proof("GET", URL, token, nonce=dpop_nonce.issue())
    assert verify(f"DPoP {token}", method="GET", url=URL, dpop=proof).jkt == dpop_key.jkt

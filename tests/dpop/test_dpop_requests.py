"""DPoP through the DRF authentication class: accepted algorithms, DPOP_MODE, proxy-aware
``htu`` and secrecy of tokens and proofs in responses and logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from django_auth0_obo.testing import DPoPKey, LocalTenant

pytestmark = pytest.mark.django_db

URL = "http://testserver/api/whoami"
PATH = "/api/whoami"


def _dpop(token: str, proof: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"DPoP {token}", "HTTP_DPOP": proof}


def test_es256_proof_with_a_bound_token_is_accepted(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    response = api_client.get(PATH, **_dpop(token, dpop_key.proof("GET", URL, token)))
    assert response.status_code == 200, response.content
    assert response.json()["scheme"] == "DPoP"
    assert response.json()["jkt"] == dpop_key.jkt


def test_post_needs_a_proof_for_post(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    response = api_client.post(PATH, **_dpop(token, dpop_key.proof("POST", URL, token)))
    assert response.status_code == 200, response.content
    response = api_client.post(PATH, **_dpop(token, dpop_key.proof("GET", URL, token)))
    assert response.status_code == 401


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA", "ES384", "ES512"])
def test_other_asymmetric_algorithms_are_accepted_when_listed(
    alg: str, auth0_tenant: LocalTenant, api_client: Any, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_ALGORITHMS": ["ES256", alg]}
    key = DPoPKey.generate(alg)
    token = auth0_tenant.mint(cnf_jkt=key.jkt)
    response = api_client.get(PATH, **_dpop(token, key.proof("GET", URL, token)))
    assert response.status_code == 200, response.content
    assert response.json()["jkt"] == key.jkt
    assert f'DPoP algs="ES256 {alg}"' in api_client.get(PATH).headers["WWW-Authenticate"]


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
def test_other_algorithms_are_refused_when_not_listed(
    alg: str, auth0_tenant: LocalTenant, api_client: Any
) -> None:
    key = DPoPKey.generate(alg)
    token = auth0_tenant.mint(cnf_jkt=key.jkt)
    response = api_client.get(PATH, **_dpop(token, key.proof("GET", URL, token)))
    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]


# DPOP_MODE.


@pytest.mark.parametrize(
    ("mode", "bearer_status", "dpop_status"),
    [("disabled", 200, 400), ("allowed", 200, 200), ("required", 401, 200)],
)
def test_dpop_mode_decides_which_schemes_are_taken(
    mode: str,
    bearer_status: int,
    dpop_status: int,
    auth0_tenant: LocalTenant,
    dpop_key: DPoPKey,
    api_client: Any,
    settings: Any,
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_MODE": mode}
    bearer_token = auth0_tenant.mint()
    bound_token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)

    bearer = api_client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {bearer_token}")
    bound = api_client.get(PATH, **_dpop(bound_token, dpop_key.proof("GET", URL, bound_token)))

    assert bearer.status_code == bearer_status, bearer.content
    assert bound.status_code == dpop_status, bound.content


@pytest.mark.parametrize(
    ("mode", "bearer", "dpop"),
    [("disabled", True, False), ("allowed", True, True), ("required", False, True)],
)
def test_the_bare_challenge_follows_dpop_mode(
    mode: str, bearer: bool, dpop: bool, auth0_tenant: LocalTenant, api_client: Any, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_MODE": mode}
    response = api_client.get(PATH)
    challenge = response.headers["WWW-Authenticate"]
    assert response.status_code == 401
    assert ('Bearer realm="api"' in challenge) is bearer
    assert ('DPoP algs="ES256"' in challenge) is dpop
    assert "error=" not in challenge


# htu behind a proxy: build_absolute_uri() honours Django's proxy settings.

PUBLIC_URL = "https://api.example.com/api/whoami"
PROXY_HEADERS = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "api.example.com"}


def test_htu_is_the_public_url_when_django_trusts_the_proxy(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, settings: Any
) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["api.example.com", "testserver"]
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)

    public = api_client.get(
        PATH, **PROXY_HEADERS, **_dpop(token, dpop_key.proof("GET", PUBLIC_URL, token))
    )
    internal = api_client.get(
        PATH, **PROXY_HEADERS, **_dpop(token, dpop_key.proof("GET", URL, token))
    )

    assert public.status_code == 200, public.content
    assert internal.status_code == 401


def test_forwarded_headers_are_ignored_unless_django_trusts_the_proxy(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    forged = api_client.get(
        PATH, **PROXY_HEADERS, **_dpop(token, dpop_key.proof("GET", PUBLIC_URL, token))
    )
    assert forged.status_code == 401
    assert "htu" in forged.headers["WWW-Authenticate"]


# Secrecy.


def test_tokens_and_proofs_never_appear_in_responses_or_logs(
    auth0_tenant: LocalTenant,
    dpop_key: DPoPKey,
    api_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    proofs = [
        dpop_key.proof("GET", URL, token),
        dpop_key.proof("POST", URL, token),
        dpop_key.proof("GET", URL, "another.token.here"),
        dpop_key.proof("GET", URL, token, jwk=dpop_key.private_jwk),
        dpop_key.proof("GET", URL, token, iat=0),
    ]
    proofs.append(proofs[0])  # replay
    responses = [api_client.get(PATH, **_dpop(token, proof)) for proof in proofs]
    responses.append(
        api_client.get(PATH, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_DPOP=proofs[0])
    )

    assert [r.status_code for r in responses] == [200, 401, 401, 401, 401, 401, 400]
    secrets = {token, *token.split(".")[1:], dpop_key.private_jwk["d"]}
    for proof in proofs:
        secrets.update({proof, *proof.split(".")[1:]})
    for response in responses:
        exposed = response.content.decode() + str(dict(response.headers))
        assert not [s for s in secrets if s in exposed]
    assert not [s for s in secrets if s in caplog.text]
    assert caplog.records  # refusals were logged, without the secrets

"""Key rotation as a JWKS consumer sees it, and exact request counters under concurrency."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from django_auth0_obo.testing import LocalTenant, decode_unverified


def _kids(http: requests.Session, tenant: LocalTenant) -> list[str]:
    return [key["kid"] for key in http.get(tenant.jwks_uri, timeout=5).json()["keys"]]


def test_rotation_publishes_the_new_key_and_keeps_the_old_one(
    tenant: LocalTenant, http: requests.Session
) -> None:
    old = tenant.signing_kid

    new = tenant.rotate()

    assert tenant.signing_kid == new != old
    assert _kids(http, tenant) == [old, new]
    assert decode_unverified(tenant.mint())[0]["kid"] == new


def test_retired_keys_leave_the_jwks_but_can_still_sign(
    tenant: LocalTenant, http: requests.Session
) -> None:
    old = tenant.signing_kid
    tenant.rotate()

    tenant.retire_key(old)

    assert old not in _kids(http, tenant)
    token = tenant.mint(kid=old)
    assert decode_unverified(token)[0]["kid"] == old
    with pytest.raises(KeyError):
        tenant.verify(token)


def test_use_key_switches_signing_back_to_an_earlier_key(
    tenant: LocalTenant, http: requests.Session
) -> None:
    old = tenant.signing_kid
    tenant.rotate()

    tenant.use_key(old)

    assert tenant.signing_kid == old
    assert _kids(http, tenant)[0] == old
    token = tenant.mint()
    assert decode_unverified(token)[0]["kid"] == old
    assert tenant.verify(token)["sub"] == "auth0|user123"
    with pytest.raises(KeyError):
        tenant.use_key("no-such-kid")


def test_unpublished_keys_sign_tokens_no_jwks_can_verify_until_published(
    tenant: LocalTenant, http: requests.Session
) -> None:
    kid = tenant.unpublished_key()
    token = tenant.mint(kid=kid)
    assert kid not in _kids(http, tenant)

    tenant.publish_key(kid)

    assert kid in _kids(http, tenant)
    assert tenant.verify(token)["sub"] == "auth0|user123"


@pytest.mark.parametrize(
    ("alg", "kty"),
    [("ES256", "EC"), ("ES384", "EC"), ("PS256", "RSA"), ("EdDSA", "OKP")],
)
def test_other_algorithms_are_published_and_verify(
    tenant: LocalTenant, http: requests.Session, alg: str, kty: str
) -> None:
    kid = tenant.add_key(alg)
    published = {key["kid"]: key for key in http.get(tenant.jwks_uri, timeout=5).json()["keys"]}

    assert published[kid]["kty"] == kty
    assert published[kid]["alg"] == alg
    public_key = jwt.PyJWK(published[kid]).key
    claims = jwt.decode(
        tenant.mint(kid=kid), public_key, algorithms=[alg], audience=tenant.default_audience
    )
    assert claims["iss"] == tenant.issuer


def test_reset_restores_the_initial_keys(tenant: LocalTenant, http: requests.Session) -> None:
    initial = tenant.signing_kid
    tenant.rotate()
    tenant.add_key("ES256")

    tenant.reset()

    assert tenant.signing_kid == initial
    assert _kids(http, tenant) == [initial]


def test_counters_are_exact_under_fifty_threads(
    tenant: LocalTenant, http: requests.Session
) -> None:
    def fetch(i: int) -> int:
        url = tenant.jwks_uri if i % 2 else tenant.discovery_url
        return requests.get(url, verify=tenant.ca_bundle, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(fetch, range(50)))

    assert statuses == [200] * 50
    assert tenant.count("jwks") == 25
    assert tenant.count("discovery") == 25
    assert tenant.count("/.well-known/jwks.json") == 25
    assert tenant.counts == {"jwks": 25, "discovery": 25}


def test_counters_are_exact_across_four_processes(tenant: LocalTenant) -> None:
    script = textwrap.dedent(
        """
        import sys, requests
        with requests.Session() as s:
            s.trust_env = False
            for _ in range(10):
                s.get(sys.argv[1], verify=sys.argv[2], timeout=10).raise_for_status()
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, tenant.jwks_uri, tenant.ca_bundle])
        for _ in range(4)
    ]

    assert [p.wait(timeout=30) for p in processes] == [0, 0, 0, 0]
    assert tenant.count("jwks") == 40


def test_reset_counts_starts_from_zero(tenant: LocalTenant, http: requests.Session) -> None:
    http.get(tenant.jwks_uri, timeout=5)

    tenant.reset_counts()

    assert tenant.count("jwks") == 0
    assert tenant.counts == {}

"""This API's own DPoP key (DPOP_CLIENT_KEY) and the proofs ``make_proof`` signs with it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from django_auth0_obo import dpop
from django_auth0_obo.checks import check_settings
from django_auth0_obo.exceptions import ConfigurationError, InvalidDPoPProof, UseDPoPNonce
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.testing.jws import decode_unverified
from django_auth0_obo.testing.proofs import check_proof

TOKEN_ENDPOINT = "https://tenant.example.com/oauth/token"
DOWNSTREAM = "https://calendar-api.example.com/events?day=today#top"
TOKEN = "downstream.access.token"


@pytest.fixture
def client_key(settings: Any) -> DPoPKey:
    key = DPoPKey.generate("ES256")
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": "https://api.example.com",
        "DPOP_CLIENT_KEY": key.private_pem,
    }
    return key


def _set_key(settings: Any, value: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_CLIENT_KEY": value}


@pytest.mark.parametrize("form", ["pem", "pem bytes", "jwk dict", "jwk json"])
def test_the_client_key_loads_from_pem_or_jwk(
    form: str, client_key: DPoPKey, settings: Any
) -> None:
    value = {
        "pem": client_key.private_pem,
        "pem bytes": client_key.private_pem.encode(),
        "jwk dict": client_key.private_jwk,
        "jwk json": json.dumps(client_key.private_jwk),
    }[form]
    _set_key(settings, value)
    loaded = dpop.load_client_key()
    assert loaded.jkt == client_key.jkt
    assert loaded.public_jwk == {k: client_key.public_jwk[k] for k in ("kty", "crv", "x", "y")}
    assert "d" not in loaded.public_jwk
    assert client_key.private_jwk["d"] not in repr(loaded)


def test_the_client_key_is_parsed_once_per_settings_generation(
    client_key: DPoPKey, settings: Any
) -> None:
    first = dpop.load_client_key()
    assert dpop.load_client_key() is first
    other = DPoPKey.generate()
    _set_key(settings, other.private_pem)
    assert dpop.load_client_key().jkt == other.jkt


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _bad_keys() -> dict[str, Any]:
    p256 = DPoPKey.generate("ES256")
    other = DPoPKey.generate("ES256")
    encrypted = p256.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    ).decode()
    public_pem = (
        p256.private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return {
        "missing": None,
        "empty string": "",
        "garbage": "not a key",
        "rsa pem": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "p-384 pem": _pem(ec.generate_private_key(ec.SECP384R1())),
        "public pem": public_pem,
        "encrypted pem": encrypted,
        "public jwk": p256.public_jwk,
        "jwk with another key's x and y": {
            **p256.private_jwk,
            "x": other.public_jwk["x"],
            "y": other.public_jwk["y"],
        },
        "jwk on p-384": DPoPKey.generate("ES384").private_jwk,
        "jwk json list": "[1, 2]",
        "jwk bad json": "{not json",
        "jwk d not base64url": {**p256.private_jwk, "d": "!!!"},
        "a number": 42,
    }


BAD_KEYS = _bad_keys()


@pytest.mark.parametrize("name", list(BAD_KEYS))
def test_an_unusable_client_key_is_a_configuration_error(
    name: str, client_key: DPoPKey, settings: Any
) -> None:
    _set_key(settings, BAD_KEYS[name])
    with pytest.raises(ConfigurationError, match="DPOP_CLIENT_KEY") as caught:
        dpop.make_proof("POST", TOKEN_ENDPOINT)
    value = BAD_KEYS[name]
    if isinstance(value, dict) and "d" in value:
        assert value["d"] not in caught.value.description


@pytest.mark.parametrize("name", [n for n in BAD_KEYS if n != "missing"])
def test_system_check_e015_reports_an_unparsable_client_key(
    name: str, client_key: DPoPKey, settings: Any
) -> None:
    _set_key(settings, BAD_KEYS[name])
    ids = [message.id for message in check_settings()]
    assert "auth0_obo.E015" in ids


def test_system_check_e015_is_silent_for_a_good_key_or_none(
    client_key: DPoPKey, settings: Any
) -> None:
    assert "auth0_obo.E015" not in [m.id for m in check_settings()]
    _set_key(settings, None)
    assert "auth0_obo.E015" not in [m.id for m in check_settings()]


# make_proof.


def test_a_proof_for_the_token_endpoint_verifies_with_our_own_verifier_and_the_stand_in(
    client_key: DPoPKey,
) -> None:
    proof = dpop.make_proof("POST", TOKEN_ENDPOINT)
    header, claims = decode_unverified(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}
    assert claims["htm"] == "POST"
    assert claims["htu"] == TOKEN_ENDPOINT
    assert "ath" not in claims
    assert "nonce" not in claims
    assert len(claims["jti"]) >= 16
    checked = check_proof(proof, method="POST", url=TOKEN_ENDPOINT, algorithms=["ES256"])
    assert checked.jkt == client_key.jkt


def test_a_downstream_proof_binds_the_token_and_drops_query_and_fragment(
    client_key: DPoPKey,
) -> None:
    proof = dpop.make_proof("GET", DOWNSTREAM, TOKEN)
    claims = decode_unverified(proof)[1]
    assert claims["htu"] == "https://calendar-api.example.com/events"
    assert claims["ath"] == dpop.access_token_hash(TOKEN)
    jkt = dpop.verify_proof(
        proof, method="GET", url=DOWNSTREAM, access_token=TOKEN, jkt=client_key.jkt
    )
    assert jkt == client_key.jkt


def test_our_own_verifier_refuses_our_proof_for_another_method_token_or_key(
    client_key: DPoPKey,
) -> None:
    args = {"method": "GET", "url": DOWNSTREAM, "access_token": TOKEN, "jkt": client_key.jkt}
    for change in (
        {"method": "POST"},
        {"url": "https://calendar-api.example.com/other"},
        {"access_token": "another.token.x"},
        {"jkt": DPoPKey.generate().jkt},
    ):
        with pytest.raises(InvalidDPoPProof):
            dpop.verify_proof(dpop.make_proof("GET", DOWNSTREAM, TOKEN), **{**args, **change})


def test_a_nonce_is_echoed_when_given(client_key: DPoPKey) -> None:
    proof = dpop.make_proof("POST", TOKEN_ENDPOINT, nonce="server-nonce-1")
    assert decode_unverified(proof)[1]["nonce"] == "server-nonce-1"
    args = {"method": "POST", "url": TOKEN_ENDPOINT, "access_token": TOKEN, "jkt": client_key.jkt}
    proof = dpop.make_proof("POST", TOKEN_ENDPOINT, TOKEN, nonce="server-nonce-1")
    assert dpop.verify_proof(proof, **args, nonce="server-nonce-1") == client_key.jkt
    with pytest.raises(UseDPoPNonce):
        dpop.verify_proof(dpop.make_proof("POST", TOKEN_ENDPOINT, TOKEN), **args, nonce="n2")


def test_every_proof_has_a_fresh_jti(client_key: DPoPKey) -> None:
    jtis = {decode_unverified(dpop.make_proof("POST", TOKEN_ENDPOINT))[1]["jti"] for _ in range(50)}
    assert len(jtis) == 50


@pytest.mark.django_db
def test_a_downstream_view_accepts_a_token_bound_to_our_key_with_our_proof_and_not_as_bearer(
    auth0_tenant: LocalTenant, api_client: Any, settings: Any
) -> None:
    key = DPoPKey.generate()
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_CLIENT_KEY": key.private_jwk}
    token = auth0_tenant.mint(cnf_jkt=dpop.load_client_key().jkt)
    url = "http://testserver/api/whoami?page=2"

    with_proof = api_client.get(
        url, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=dpop.make_proof("GET", url, token)
    )
    as_bearer = api_client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert with_proof.status_code == 200, with_proof.content
    assert with_proof.json()["jkt"] == key.jkt
    assert as_bearer.status_code == 401

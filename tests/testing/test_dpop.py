"""DPoP proofs written by the stand-in's client side, checked against RFC vectors."""

from __future__ import annotations

import time

import jwt
import pytest

from django_auth0_obo.testing import (
    REMOVE,
    DPoPKey,
    access_token_hash,
    decode_unverified,
    jwk_thumbprint,
)
from django_auth0_obo.testing.proofs import ProofError, check_proof, normalize_htu

RFC7638_RSA_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
    "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YG"
    "jQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
    "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC9449_EC_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
}


def test_thumbprint_of_the_rfc7638_rsa_example() -> None:
    assert jwk_thumbprint(RFC7638_RSA_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_of_the_rfc9449_ec_example() -> None:
    assert jwk_thumbprint(RFC9449_EC_KEY) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def test_ath_of_the_rfc9449_example() -> None:
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"

    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_thumbprints_ignore_non_required_members() -> None:
    assert jwk_thumbprint({**RFC9449_EC_KEY, "kid": "x", "use": "sig"}) == jwk_thumbprint(
        RFC9449_EC_KEY
    )
    with pytest.raises(ValueError, match="lacks"):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "a"})


@pytest.mark.parametrize(
    ("alg", "kty"),
    [("ES256", "EC"), ("ES384", "EC"), ("RS256", "RSA"), ("PS256", "RSA"), ("EdDSA", "OKP")],
)
def test_proofs_for_every_algorithm_verify_with_their_header_jwk(alg: str, kty: str) -> None:
    key = DPoPKey.generate(alg)

    proof = key.proof("GET", "https://api.example.com/r?q=1#f", access_token="tok")

    header, claims = decode_unverified(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == alg
    assert header["jwk"] == key.public_jwk
    assert header["jwk"]["kty"] == kty
    assert "d" not in header["jwk"]
    assert claims["htm"] == "GET"
    assert claims["htu"] == "https://api.example.com/r"
    assert claims["ath"] == access_token_hash("tok")
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["jti"]
    verified = jwt.decode(proof, jwt.PyJWK(header["jwk"], algorithm=alg).key, algorithms=[alg])
    assert verified == claims
    assert key.jkt == jwk_thumbprint(header["jwk"])


def test_each_proof_has_a_fresh_jti() -> None:
    key = DPoPKey.generate()

    jtis = {decode_unverified(key.proof("GET", "https://x/"))[1]["jti"] for _ in range(5)}

    assert len(jtis) == 5


def test_overrides_for_negative_tests() -> None:
    key = DPoPKey.generate()
    other = DPoPKey.generate()

    proof = key.proof(
        "POST",
        "https://x/",
        nonce="n1",
        iat=123,
        jti="fixed",
        claims={"htm": "GET", "extra": True},
        omit=["htu"],
        headers={"typ": "JWT", "alg": REMOVE},
        jwk=other.public_jwk,
    )

    header, claims = decode_unverified(proof)
    assert header == {"typ": "JWT", "jwk": other.public_jwk}
    assert claims == {"jti": "fixed", "htm": "GET", "iat": 123, "nonce": "n1", "extra": True}


def test_an_empty_jwk_override_is_embedded_as_is() -> None:
    header, _ = decode_unverified(DPoPKey.generate().proof("GET", "https://x/", jwk={}))

    assert header["jwk"] == {}


def test_private_jwk_can_be_embedded_on_purpose() -> None:
    key = DPoPKey.generate()

    header, _ = decode_unverified(key.proof("GET", "https://x/", jwk=key.private_jwk))

    assert "d" in header["jwk"]
    assert "d" not in key.public_jwk


def test_keys_round_trip_through_jwk_and_pem() -> None:
    key = DPoPKey.generate("ES256")

    assert DPoPKey.from_jwk(key.private_jwk).jkt == key.jkt
    assert DPoPKey.from_pem(key.private_pem).jkt == key.jkt
    assert DPoPKey.from_pem(key.private_pem).alg == "ES256"
    with pytest.raises(ValueError, match="private"):
        DPoPKey.from_jwk(key.public_jwk)


def test_token_endpoint_proof_check_accepts_a_good_proof() -> None:
    key = DPoPKey.generate()
    url = "https://127.0.0.1:8443/oauth/token"

    checked = check_proof(key.proof("POST", url), method="POST", url=url, algorithms=["ES256"])

    assert checked.jkt == key.jkt


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"headers": {"typ": "JWT"}}, "typ"),
        ({"claims": {"htm": "GET"}}, "htm"),
        ({"claims": {"htu": "https://127.0.0.1:8443/other"}}, "htu"),
        ({"iat": 1}, "iat"),
        ({"iat": 10**10}, "iat"),
        ({"omit": ["jti"]}, "jti"),
        ({"headers": {"jwk": REMOVE}}, "jwk"),
        ({"jwk": {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}}, "public"),
        ({"headers": {"alg": "RS256"}}, "alg"),
    ],
)
def test_token_endpoint_proof_check_refuses_bad_proofs(changes: dict, message: str) -> None:
    key = DPoPKey.generate()
    url = "https://127.0.0.1:8443/oauth/token"

    with pytest.raises(ProofError, match=message):
        check_proof(key.proof("POST", url, **changes), method="POST", url=url, algorithms=["ES256"])


def test_proof_signed_by_another_key_is_refused() -> None:
    key, other = DPoPKey.generate(), DPoPKey.generate()
    url = "https://127.0.0.1:8443/oauth/token"

    with pytest.raises(ProofError, match="signature"):
        check_proof(
            key.proof("POST", url, jwk=other.public_jwk),
            method="POST",
            url=url,
            algorithms=["ES256"],
        )


def test_htu_normalization() -> None:
    assert normalize_htu("HTTPS://Example.COM:443/a?b#c") == "https://example.com/a"
    assert normalize_htu("https://127.0.0.1:8443") == "https://127.0.0.1:8443/"

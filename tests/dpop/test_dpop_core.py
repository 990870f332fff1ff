"""The framework-free DPoP core: RFC test vectors, URL normalisation, ``verify_proof`` called
directly (nonce hook, replay with the default cache, fail-closed cache) and the key LRU."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from django_auth0_obo import dpop, jose, replay
from django_auth0_obo.exceptions import InvalidDPoPProof, TenantUnavailable, UseDPoPNonce
from django_auth0_obo.testing import DPoPKey
from django_auth0_obo.testing.jwk_encoding import access_token_hash as standin_ath
from django_auth0_obo.testing.jwk_encoding import b64url_encode
from django_auth0_obo.testing.jwk_encoding import jwk_thumbprint as standin_thumbprint
from django_auth0_obo.testing.jws import decode_unverified

URL = "https://api.example.com/resource"
TOKEN = "header.payload.signature"

RFC9449_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
}
RFC7638_KEY = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qv"
        "zqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
        "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


@pytest.fixture
def dpop_settings(settings: Any) -> Any:
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": "https://api.example.com",
        "DPOP_ALGORITHMS": ["ES256", "RS256", "PS256", "EdDSA"],
    }
    return settings


def _verify(key: DPoPKey, proof: str, **kwargs: Any) -> str:
    args: dict[str, Any] = {"method": "GET", "url": URL, "access_token": TOKEN, "jkt": key.jkt}
    args.update(kwargs)
    return dpop.verify_proof(proof, **args)


# RFC vectors and helpers.


def test_thumbprint_of_the_rfc_9449_example_key_matches_the_rfc() -> None:
    assert dpop.jwk_thumbprint(RFC9449_KEY) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def test_thumbprint_of_the_rfc_7638_rsa_key_ignores_optional_members() -> None:
    assert dpop.jwk_thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ath_of_the_rfc_9449_example_token_matches_the_rfc() -> None:
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert dpop.access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"])
def test_thumbprints_agree_with_the_stand_in_for_every_key_type(alg: str) -> None:
    key = DPoPKey.generate(alg)
    assert dpop.jwk_thumbprint(key.public_jwk) == standin_thumbprint(key.public_jwk) == key.jkt


@pytest.mark.parametrize(
    "bad",
    [{}, {"kty": "oct", "k": "abc"}, {"kty": "EC", "crv": "P-256", "x": "a"}, {"kty": 1}],
    ids=["empty", "symmetric", "missing y", "kty not a string"],
)
def test_thumbprint_of_an_unusable_jwk_is_a_value_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - JWKError is a ValueError
        dpop.jwk_thumbprint(bad)


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80))
def test_ath_agrees_with_the_stand_in_for_any_ascii_token(token: str) -> None:
    assert dpop.access_token_hash(token) == standin_ath(token)


@pytest.mark.parametrize(
    ("given_url", "normalised"),
    [
        ("https://api.example.com/a", "https://api.example.com/a"),
        ("HTTPS://API.Example.COM/a", "https://api.example.com/a"),
        ("https://api.example.com:443/a", "https://api.example.com/a"),
        ("http://api.example.com:80/a", "http://api.example.com/a"),
        ("https://api.example.com:8443/a", "https://api.example.com:8443/a"),
        ("http://api.example.com:443/a", "http://api.example.com:443/a"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com?x=1", "https://api.example.com/"),
        ("https://api.example.com/a?x=1#frag", "https://api.example.com/a"),
        ("https://api.example.com/a#frag?x", "https://api.example.com/a"),
        ("https://api.example.com/%7Euser", "https://api.example.com/~user"),
        ("https://api.example.com/%7euser", "https://api.example.com/~user"),
        ("https://api.example.com/%41%2d%5F", "https://api.example.com/A-_"),
        ("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"),
        ("https://api.example.com/a%3bv%3D1;w=2", "https://api.example.com/a%3Bv%3D1;w=2"),
        ("https://api.example.com/caf%c3%a9", "https://api.example.com/caf%C3%A9"),
        ("https://api.example.com/café", "https://api.example.com/caf%C3%A9"),
        ("https://api.example.com/a b", "https://api.example.com/a%20b"),
        ("https://api.example.com/a/./b/../c", "https://api.example.com/a/c"),
        ("https://api.example.com/a/%2E%2E/c", "https://api.example.com/c"),
        ("https://api.example.com/..", "https://api.example.com/"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    ],
)
def test_normalize_htu(given_url: str, normalised: str) -> None:
    assert dpop.normalize_htu(given_url) == normalised


@pytest.mark.parametrize(
    "bad",
    [
        "/relative/path",
        "ftp://api.example.com/a",
        "https:///no-host",
        "https://user:pw@api.example.com/a",
        "https://api.example.com:99999/a",
        "https://api.example.com:port/a",
        "",
    ],
)
def test_normalize_htu_refuses_what_is_not_an_absolute_http_url(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        dpop.normalize_htu(bad)


@pytest.mark.parametrize(
    ("given_url", "compared"),
    [
        ("https://api.example.com/items%3Bv%3D1", "https://api.example.com/items;v=1"),
        ("https://api.example.com/items;v=1", "https://api.example.com/items;v=1"),
        (
            "https://API.example.com/%3a%40%21%24%26%27%28%29%2a%2B%2c",
            "https://api.example.com/:@!$&'()*+,",
        ),
        ("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"),  # a segment's /
        ("https://api.example.com/a%3Fb%23c%25d", "https://api.example.com/a%3Fb%23c%25d"),
        ("https://api.example.com/%7E%20", "https://api.example.com/~%20"),
        ("https://api.example.com/a;b/../c", "https://api.example.com/c"),
    ],
)
def test_comparable_htu_decodes_the_paths_sub_delimiters_only(
    given_url: str, compared: str
) -> None:
    """Django escapes ``;`` and ``=`` in the request URL and decodes them before routing: the
    comparison cannot tell them from their escapes, but an escaped ``/`` is not a segment's end."""
    assert dpop.comparable_htu(given_url) == compared


def test_a_proof_for_an_escaped_slash_does_not_match_the_slash(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    proof = dpop_key.proof("GET", "https://api.example.com/a%2Fb", access_token=TOKEN)
    with pytest.raises(InvalidDPoPProof, match="htu"):
        _verify(dpop_key, proof, url="https://api.example.com/a/b")


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        ("https://api.example.com/items;v=1", "https://api.example.com/items%3Bv%3D1"),
        ("https://api.example.com/items%3Bv%3D1", "https://api.example.com/items;v=1"),
    ],
)
def test_a_proof_naming_sub_delimiters_literally_or_escaped_matches(
    dpop_settings: Any, dpop_key: DPoPKey, htu: str, url: str
) -> None:
    proof = dpop_key.proof("GET", htu, access_token=TOKEN)
    assert _verify(dpop_key, proof, url=url) == dpop_key.jkt


def test_long_urls_are_normalised_without_the_memo() -> None:
    path = "a/%7e" * 200
    assert dpop.normalize_htu(f"HTTPS://api.example.com/{path}") == (
        "https://api.example.com/" + "a/~" * 200
    )


@given(st.text(max_size=60))
def test_normalize_htu_is_idempotent_or_refuses(path: str) -> None:
    try:
        once = dpop.normalize_htu(f"https://API.example.com/{path}")
    except ValueError:
        return
    assert dpop.normalize_htu(once) == once
    compared = dpop.comparable_htu(once)
    assert dpop.comparable_htu(compared) == compared
    assert dpop.comparable_htu(f"https://API.example.com/{path}") == compared
    assert once.startswith("https://api.example.com/")
    assert "?" not in once
    assert "#" not in once


# verify_proof, called directly.


def test_a_valid_proof_returns_its_key_thumbprint(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    proof = dpop_key.proof("GET", URL, access_token=TOKEN)
    assert _verify(dpop_key, proof) == dpop_key.jkt


def test_ath_is_checked_against_the_digest_the_token_verifier_passes(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    """The pipeline hands over SHA-256 of the token it verified: that digest is what ``ath``
    must encode, not a second hash of ``access_token``."""
    digest = hashlib.sha256(TOKEN.encode("ascii")).digest()
    proof = dpop_key.proof("GET", URL, access_token=TOKEN)
    assert _verify(dpop_key, proof, access_token_digest=digest) == dpop_key.jkt
    other = dpop_key.proof("GET", URL, access_token=TOKEN)
    other_digest = hashlib.sha256(b"another.access.token").digest()
    with pytest.raises(InvalidDPoPProof, match="ath does not match"):
        _verify(dpop_key, other, access_token_digest=other_digest)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
def test_other_asymmetric_algorithms_verify_when_listed(dpop_settings: Any, alg: str) -> None:
    key = DPoPKey.generate(alg)
    assert _verify(key, key.proof("GET", URL, access_token=TOKEN)) == key.jkt


def test_the_same_proof_is_refused_the_second_time_with_the_default_cache(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    proof = dpop_key.proof("GET", URL, access_token=TOKEN)
    _verify(dpop_key, proof)
    with pytest.raises(InvalidDPoPProof, match="replayed"):
        _verify(dpop_key, proof)


def test_the_same_jti_for_another_url_or_key_is_not_a_replay(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    other_key = DPoPKey.generate()
    _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN, jti="same"))
    _verify(
        dpop_key, dpop_key.proof("GET", URL + "/2", access_token=TOKEN, jti="same"), url=URL + "/2"
    )
    _verify(other_key, other_key.proof("GET", URL, access_token=TOKEN, jti="same"))


def test_a_refused_proof_does_not_burn_its_jti(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    proof = dpop_key.proof("GET", URL, access_token=TOKEN)
    with pytest.raises(InvalidDPoPProof, match="htm"):
        _verify(dpop_key, proof, method="POST")
    assert _verify(dpop_key, proof) == dpop_key.jkt


def test_the_replay_key_is_a_digest_not_the_proof_or_jti(dpop_key: DPoPKey) -> None:
    key = replay.replay_key(dpop_key.jkt, URL, "my-jti-value")
    assert key.startswith(replay.KEY_PREFIX)
    assert "my-jti-value" not in key
    assert dpop_key.jkt not in key
    assert len(key) == len(replay.KEY_PREFIX) + 64


def _record_ttl(key: str) -> float:
    """Seconds the replay record ``key`` has left, read from the cache that holds it.

    Redis answers ``PTTL`` on the client the replay check kept; a LocMemCache alias's records
    are the process's own (``replay.local_records``), named by the digest ``key`` is made of.
    Other backends are not read.
    """
    cache = replay.caches["default"]
    if isinstance(cache, RedisCache):
        client = replay.kept_client("default")
        assert client is not None
        return float(client.pttl(cache.make_key(key))) / 1000
    if isinstance(cache, LocMemCache):
        expiry = replay.local_records.expiry(bytes.fromhex(key.removeprefix(replay.KEY_PREFIX)))
        assert expiry is not None
        return expiry - time.time()
    pytest.skip(f"no way to read a record's expiry on {type(cache).__name__}")


def test_replay_records_outlive_the_iat_window(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    proof = dpop_key.proof("GET", URL, access_token=TOKEN)
    _verify(dpop_key, proof)
    _, claims = decode_unverified(proof)
    key = replay.replay_key(dpop_key.jkt, dpop.normalize_htu(URL), claims["jti"])
    # DPOP_IAT_OFFSET (300) + DPOP_IAT_LEEWAY (30): longer than the offset alone
    assert 300 < _record_ttl(key) <= 300 + 30


@pytest.fixture
def unavailable_replay_cache(dpop_settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The replay cache out of service: a Redis on a closed port when the suite runs on Redis
    (a real fault); on local memory, a store full of live records (its bound shrunk to 0);
    elsewhere, a fault injected into ``cache.add``."""
    if isinstance(replay.caches["default"], LocMemCache):
        monkeypatch.setattr(replay, "MAX_LOCAL_RECORDS", 0)
        yield
        return
    if not isinstance(replay.caches["default"], RedisCache):

        def broken_add(*args: Any, **kwargs: Any) -> bool:
            raise ConnectionError("cache down")

        monkeypatch.setattr(replay.caches["default"], "add", broken_add)
        yield
        return
    dead = {"BACKEND": "django.core.cache.backends.redis.RedisCache"}
    dead["LOCATION"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with override_settings(CACHES={**dpop_settings.CACHES, "dead_replay": dead}):
        dpop_settings.AUTH0_OBO = {**dpop_settings.AUTH0_OBO, "CACHE_ALIAS": "dead_replay"}
        yield


def test_an_unavailable_replay_cache_fails_closed(
    unavailable_replay_cache: None, dpop_key: DPoPKey
) -> None:
    with pytest.raises(TenantUnavailable):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN))


def test_iat_window_follows_the_settings(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    dpop_settings.AUTH0_OBO = {**dpop_settings.AUTH0_OBO, "DPOP_IAT_OFFSET": 10}
    old = dpop_key.proof("GET", URL, access_token=TOKEN, iat=int(time.time()) - 20)
    with pytest.raises(InvalidDPoPProof, match="too old"):
        _verify(dpop_key, old)
    dpop_settings.AUTH0_OBO = {**dpop_settings.AUTH0_OBO, "DPOP_IAT_OFFSET": 60}
    assert _verify(dpop_key, old) == dpop_key.jkt


def test_a_float_iat_inside_the_window_is_accepted(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    proof = dpop_key.proof("GET", URL, access_token=TOKEN, iat=time.time() - 0.5)
    assert _verify(dpop_key, proof) == dpop_key.jkt


@pytest.mark.parametrize("iat", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_iat_is_refused(dpop_settings: Any, dpop_key: DPoPKey, iat: str) -> None:
    header, claims = decode_unverified(dpop_key.proof("GET", URL, access_token=TOKEN))
    payload = json.dumps({**claims, "iat": "IAT"}, separators=(",", ":")).replace('"IAT"', iat)
    signing_input = (
        f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(payload.encode())}"
    )
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), dpop_key.private_key)
    with pytest.raises(InvalidDPoPProof):
        _verify(dpop_key, f"{signing_input}.{b64url_encode(signature)}")


@pytest.mark.parametrize("claim", ["jti", "htu", "htm", "ath", "nonce"])
def test_lone_surrogates_in_claims_are_refused_or_harmless(
    dpop_settings: Any, dpop_key: DPoPKey, claim: str
) -> None:
    header, claims = decode_unverified(dpop_key.proof("GET", URL, access_token=TOKEN))
    payload = json.dumps({**claims, claim: "SURROGATE"}).replace('"SURROGATE"', '"a\\ud800"')
    signing_input = (
        f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(payload.encode())}"
    )
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), dpop_key.private_key)
    proof = f"{signing_input}.{b64url_encode(signature)}"
    if claim in ("jti", "nonce"):
        assert _verify(dpop_key, proof) == dpop_key.jkt
    else:
        with pytest.raises(InvalidDPoPProof):
            _verify(dpop_key, proof)
    with pytest.raises(InvalidDPoPProof):
        _verify(dpop_key, proof, jkt="\ud800")


def test_a_proof_over_the_length_limit_is_refused_before_parsing(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    proof = dpop_key.proof("GET", URL, access_token=TOKEN, claims={"pad": "x" * 9000})
    with pytest.raises(InvalidDPoPProof, match="not a JWT"):
        _verify(dpop_key, proof)


def test_alg_not_in_dpop_algorithms_is_refused_even_if_asymmetric(
    settings: Any, dpop_key: DPoPKey
) -> None:
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": "a", "DPOP_ALGORITHMS": ["RS256"]}
    with pytest.raises(InvalidDPoPProof, match="alg"):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN))


def test_dpop_algorithms_may_be_a_single_string(settings: Any) -> None:
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": "a", "DPOP_ALGORITHMS": "EdDSA"}
    key = DPoPKey.generate("EdDSA")
    assert _verify(key, key.proof("GET", URL, access_token=TOKEN)) == key.jkt


def test_a_small_rsa_key_is_refused(dpop_settings: Any) -> None:
    key = DPoPKey.from_private_key(
        rsa.generate_private_key(public_exponent=65537, key_size=1024), "RS256"
    )
    with pytest.raises(InvalidDPoPProof, match="too small"):
        _verify(key, key.proof("GET", URL, access_token=TOKEN))


def test_an_ec_point_off_the_curve_is_refused(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    bad_jwk = {**dpop_key.public_jwk, "y": dpop_key.public_jwk["x"]}
    with pytest.raises(InvalidDPoPProof, match="not a valid public key"):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN, jwk=bad_jwk))


def test_a_jwk_whose_own_alg_disagrees_is_refused(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    bad_jwk = {**dpop_key.public_jwk, "alg": "ES384"}
    with pytest.raises(InvalidDPoPProof, match="does not match alg"):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN, jwk=bad_jwk))


def test_public_keys_are_built_once_and_reused(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    first = jose.public_key_from_jwk(dict(dpop_key.public_jwk), "ES256")
    again = jose.public_key_from_jwk({**dpop_key.public_jwk, "kid": "ignored"}, "ES256")
    assert again is first
    assert first.jkt == dpop_key.jkt


def test_descriptions_never_contain_the_proof_or_token(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    proof = dpop_key.proof("GET", URL, access_token="other.token.value")
    with pytest.raises(InvalidDPoPProof) as caught:
        _verify(dpop_key, proof)
    for secret in (proof, *proof.split("."), TOKEN):
        assert secret not in caught.value.description


# The server-nonce hook.


def test_an_expected_nonce_must_be_echoed(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    with pytest.raises(UseDPoPNonce):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN), nonce="n-1")
    with pytest.raises(UseDPoPNonce):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN, nonce="n-0"), nonce="n-1")
    proof = dpop_key.proof("GET", URL, access_token=TOKEN, nonce="n-1")
    assert _verify(dpop_key, proof, nonce="n-1") == dpop_key.jkt


def test_a_nonce_callable_judges_the_claim(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    seen: list[str | None] = []

    def accept_fresh(value: str | None) -> bool:
        seen.append(value)
        return value == "fresh"

    with pytest.raises(UseDPoPNonce):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN), nonce=accept_fresh)
    proof = dpop_key.proof("GET", URL, access_token=TOKEN, nonce="fresh")
    assert _verify(dpop_key, proof, nonce=accept_fresh) == dpop_key.jkt
    assert seen == [None, "fresh"]


def test_without_a_server_nonce_a_proof_nonce_is_ignored(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    proof = dpop_key.proof("GET", URL, access_token=TOKEN, nonce="whatever")
    assert _verify(dpop_key, proof) == dpop_key.jkt


# The checked-header memo: a known client's header is not re-parsed, but nothing is skipped.


def _header_segment(proof: str) -> str:
    return proof.split(".")[0]


def test_a_known_header_signed_by_another_key_is_refused(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    assert _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN)) == dpop_key.jkt
    other = DPoPKey.generate("ES256")
    forged = other.proof("GET", URL, access_token=TOKEN, jwk=dpop_key.public_jwk)
    assert _header_segment(forged) == _header_segment(dpop_key.proof("GET", URL))
    with pytest.raises(InvalidDPoPProof, match="signature is invalid"):
        _verify(dpop_key, forged)


def test_a_different_jwk_with_the_same_kid_is_refused_after_a_cached_proof(
    dpop_settings: Any, dpop_key: DPoPKey
) -> None:
    named = {**dpop_key.public_jwk, "kid": "client-key"}
    assert _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN, jwk=named))
    other = DPoPKey.generate("ES256")
    impostor = other.proof(
        "GET", URL, access_token=TOKEN, jwk={**other.public_jwk, "kid": "client-key"}
    )
    with pytest.raises(InvalidDPoPProof, match="cnf"):
        _verify(dpop_key, impostor)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"htu": "https://api.example.com/other"}, "htu"),
        ({"htm": "POST"}, "htm"),
        ({"ath": "x" * 43}, "ath"),
        ({"iat": 1}, "too old"),
    ],
)
def test_a_cached_header_still_has_every_claim_checked(
    dpop_settings: Any, dpop_key: DPoPKey, claims: dict[str, Any], message: str
) -> None:
    assert _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN))
    changed = dpop_key.proof("GET", URL, access_token=TOKEN, claims=claims)
    with pytest.raises(InvalidDPoPProof, match=message):
        _verify(dpop_key, changed)


def test_a_settings_change_forgets_checked_headers(settings: Any, dpop_key: DPoPKey) -> None:
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": "a", "DPOP_ALGORITHMS": ["ES256"]}
    assert _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN))
    settings.AUTH0_OBO = {"DOMAIN": "t.example.com", "AUDIENCE": "a", "DPOP_ALGORITHMS": ["RS256"]}
    with pytest.raises(InvalidDPoPProof, match="alg"):
        _verify(dpop_key, dpop_key.proof("GET", URL, access_token=TOKEN))


def test_a_refused_header_is_refused_every_time(dpop_settings: Any, dpop_key: DPoPKey) -> None:
    bad = dpop_key.proof("GET", URL, access_token=TOKEN, headers={"crit": ["exp"]})
    for _ in range(2):
        with pytest.raises(InvalidDPoPProof, match="critical"):
            _verify(dpop_key, bad)

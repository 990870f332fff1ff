"""The JOSE core's rules on their own: strict base64url, strict JSON, NumericDates, the
compact-JWS split and JWK → public key, each refusing what it must with a JOSEError."""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from django_auth0_obo import jose
from django_auth0_obo.testing import DPoPKey


@given(st.binary(max_size=200))
def test_base64url_round_trips(data: bytes) -> None:
    assert jose.b64url_decode(jose.b64url_encode(data)) == data
    assert jose.b64url_decode(jose.b64url_encode(data).encode()) == data


@pytest.mark.parametrize(
    "text",
    ["YQ==", "a+b/", "a b", "abcde", "é", "YQ\n", None, 1, ["YQ"]],
    ids=[
        *("padding", "standard alphabet", "space", "length 1 mod 4", "non-ascii", "newline"),
        *("None", "int", "list"),
    ],
)
def test_base64url_is_strict(text: Any) -> None:
    with pytest.raises(jose.JOSEError):
        jose.b64url_decode(text)


_B64URL_ORACLE = re.compile(rb"[A-Za-z0-9_-]*")


@given(
    st.binary(max_size=40) | st.text(alphabet="AZaz09-_+/= .\n\x00é", max_size=40).map(str.encode)
)
def test_base64url_accepts_exactly_the_url_safe_alphabet(data: bytes) -> None:
    """The decoder's alphabet check agrees with the plain rule: URL-safe characters only, and no
    length of 1 mod 4 (which no byte string encodes to)."""
    valid = bool(_B64URL_ORACLE.fullmatch(data)) and len(data) % 4 != 1
    try:
        decoded = jose.b64url_decode(data)
    except jose.JOSEError:
        assert not valid
    else:
        assert valid
        assert base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4)) == decoded


@pytest.mark.parametrize(
    "text",
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", '{"exp": 1e309}', "[1, NaN]", "1" * 5000],
)
def test_strict_json_refuses_what_is_not_a_finite_json_number(text: str) -> None:
    with pytest.raises(jose.JOSEError):
        jose.loads(text.encode())


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
def test_strict_json_reads_what_json_writes(value: Any) -> None:
    assert jose.loads(json.dumps(value).encode()) == value


@given(st.text(alphabet=' \t\n\r\x0b\xa0{}[]":,0123456789.eE+-truefalsn\\u', max_size=30))
def test_strict_json_decides_like_the_standard_decoder(text: str) -> None:
    """The fast path (the decoder's own scanner) accepts and refuses exactly what
    ``JSONDecoder.decode`` does with the same strict hooks, whitespace around the value included."""
    try:
        expected = jose.STRICT_JSON.decode(text)
    except (ValueError, RecursionError):
        with pytest.raises(jose.JOSEError):
            jose.loads(text)
    else:
        assert jose.loads(text) == expected


@pytest.mark.parametrize("text", [b"\xff", b"{", b"", b'"\\ud800"x'])
def test_strict_json_refuses_broken_input(text: bytes) -> None:
    with pytest.raises(jose.JOSEError):
        jose.loads(text)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (0, True),
        (1_700_000_000, True),
        (1_700_000_000.5, True),
        (10**400, True),  # an integer compares exactly, however large
        (math.inf, False),
        (-math.inf, False),
        (math.nan, False),
        (True, False),
        ("1700000000", False),
        (None, False),
        ([1], False),
    ],
)
def test_a_numeric_date_is_an_integer_or_a_finite_float(value: Any, valid: bool) -> None:
    assert jose.is_numeric_date(value) is valid


@pytest.mark.parametrize("jws", [b"a.b", b"a.b.c.d", b".b.c", b"a..c", b""])
def test_compact_jws_has_three_parts_and_a_header_and_payload(jws: bytes) -> None:
    with pytest.raises(jose.JOSEError):
        jose.split_compact(jws)


def test_parse_compact_returns_header_payload_signing_input_and_signature() -> None:
    header, payload = jose.b64url_encode(b'{"alg":"ES256"}'), jose.b64url_encode(b'{"a":1}')
    jws = f"{header}.{payload}.{jose.b64url_encode(b'sig')}".encode()
    assert jose.parse_compact(jws) == (
        {"alg": "ES256"},
        {"a": 1},
        f"{header}.{payload}".encode(),
        b"sig",
    )


@pytest.mark.parametrize("segment", [b"WzFd", b"MQ", b"bnVsbA"], ids=["list", "number", "null"])
def test_a_header_must_be_a_json_object(segment: bytes) -> None:
    with pytest.raises(jose.JOSEError, match="not a JSON object"):
        jose.decode_object(segment)


def test_every_algorithm_names_the_key_it_needs() -> None:
    assert jose.key_fits("ES256", "EC", "P-256")
    assert not jose.key_fits("ES256", "EC", "P-384")
    assert not jose.key_fits("ES256", "EC", ["P-256"])
    assert jose.key_fits("RS256", "RSA", None)
    assert not jose.key_fits("RS256", ["RSA"], None)
    assert jose.key_fits("EdDSA", "OKP", "Ed25519")
    assert not jose.key_fits("HS256", "oct", None)
    assert not jose.key_fits(["RS256"], "RSA", None)  # type: ignore[arg-type]
    assert "none" not in jose.ASYMMETRIC_ALGORITHMS


def test_a_jwks_style_jwk_gives_a_key_for_every_algorithm_of_its_type() -> None:
    key = DPoPKey.generate("ES256")
    public = jose.public_key_from_jwk(key.public_jwk)
    assert public.jkt == key.jkt
    assert public.accepts("ES256")
    assert not public.accepts("ES384")
    assert not public.accepts("RS256")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"d": "AQAB"}, "must be a public key"),
        ({"alg": "HS256"}, "unsupported alg"),
        ({"alg": ["ES256"]}, "unsupported alg"),
        ({"alg": "ES384"}, "does not match its alg"),
        ({"kty": ["EC"]}, "unsupported key type"),
        ({"crv": ["P-256"]}, "malformed key member"),
        ({"crv": "secp256k1"}, "not a valid public key"),
        ({"x": 1}, "malformed key member"),
        ({"x": "A" * 3000}, "malformed key member"),
    ],
)
def test_a_bad_jwk_says_why(change: dict[str, Any], message: str) -> None:
    jwk = {**DPoPKey.generate("ES256").public_jwk, **change}
    with pytest.raises(jose.JWKError, match=message):
        jose.public_key_from_jwk(jwk)


def test_a_signature_of_the_wrong_shape_is_simply_invalid() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert jose.verify("ES256", key, b"input", b"short") is False
    assert jose.verify("HS256", key, b"input", base64.b64encode(b"x")) is False


_RSA_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_P256 = ec.generate_private_key(ec.SECP256R1())
_ED25519 = ed25519.Ed25519PrivateKey.generate()


@pytest.mark.parametrize(
    ("alg", "private", "own_alg"),
    [
        ("ES256", _RSA_2048, "RS256"),
        ("RS256", _P256, "ES256"),
        ("RS256", _ED25519, "EdDSA"),
        ("ES256", _ED25519, "EdDSA"),
    ],
)
def test_a_key_of_another_kind_than_the_algorithm_is_refused_not_crashed(
    alg: str, private: Any, own_alg: str
) -> None:
    """The fast paths pick the key's kind by its class (remembered per class); a key of the
    other kind, or of a kind without a fast path, still gets a plain refusal, and its own
    algorithm still accepts its signatures."""
    public = private.public_key()
    for _ in range(2):  # the second call answers from the remembered kind
        assert jose.verify(alg, public, b"input", b"x" * 64) is False
    signature = get_default_algorithms()[own_alg].sign(b"input", private)
    assert jose.verify(own_alg, public, b"input", signature) is True
    assert jose.verify(own_alg, public, b"other input", signature) is False


# ECDSA is checked without PyJWT's per-call conversion: same verdicts as PyJWT's verifier.

EC_ALGORITHMS = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
EC_KEYS = {alg: ec.generate_private_key(curve) for alg, curve in EC_ALGORITHMS.items()}


def _pyjwt_verdict(alg: str, key: Any, signing_input: bytes, signature: bytes) -> bool:
    return bool(get_default_algorithms()[alg].verify(signing_input, key, signature))


# RS256/384/512 too are checked with prebuilt padding and hashes, not PyJWT's verifier.

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_KEYS: dict[str, Any] = {
    **EC_KEYS,
    **dict.fromkeys(["RS256", "RS384", "RS512"], RSA_KEY),
}


@settings(max_examples=120, deadline=None)
@given(
    alg=st.sampled_from(sorted(PRIVATE_KEYS)),
    signing_input=st.binary(max_size=64),
    change=st.one_of(
        st.none(),
        st.integers(min_value=0, max_value=260),  # flip a bit at this byte (if in range)
        st.binary(max_size=300),  # a signature of its own, any length
    ),
)
def test_ecdsa_and_rsa_verdicts_match_pyjwt(
    alg: str, signing_input: bytes, change: int | bytes | None
) -> None:
    private = PRIVATE_KEYS[alg]
    signature = get_default_algorithms()[alg].sign(signing_input, private)
    if isinstance(change, int) and change < len(signature):
        flipped = bytearray(signature)
        flipped[change] ^= 0x01
        signature = bytes(flipped)
    elif isinstance(change, bytes):
        signature = change
    public = private.public_key()
    verdict = jose.verify(alg, public, signing_input, signature)
    assert verdict is _pyjwt_verdict(alg, public, signing_input, signature)
    assert verdict is (change is None or (isinstance(change, int) and change >= len(signature)))


@pytest.mark.parametrize("alg", sorted(EC_ALGORITHMS))
def test_ecdsa_refuses_zero_and_overlong_r_and_s(alg: str) -> None:
    public = EC_KEYS[alg].public_key()
    size = (public.curve.key_size + 7) // 8
    for signature in (bytes(2 * size), b"\xff" * (2 * size), b"\x00" + bytes(2 * size)):
        assert jose.verify(alg, public, b"input", signature) is False

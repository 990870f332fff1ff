"""The JOSE rules, each written once: algorithms, base64url, JSON, compact JWS, JWKs, signatures.

Access tokens (``tokens``), the tenant's JWKS (``keys``), DPoP proofs (``dpop``) and this API's
own DPoP key (``dpop_key``) all parse the same formats. A rule written in two places drifts — a
fix to one copy silently misses the other — so every rule lives here and the callers import it:

- the asymmetric-algorithm allow-list and the key type (and curves) each algorithm needs;
- strict base64url (the URL-safe alphabet, no padding) and strict JSON (no ``NaN``/``Infinity``,
  no number that overflows to infinity), and what a NumericDate may be;
- the compact-JWS split;
- what makes a JWK private or symmetric, the minimum RSA size, and turning a JWK into a public
  key by one path (with RFC 7638 thumbprints);
- one signature check (ECDSA without PyJWT's per-call conversion, the rest through PyJWT).

Every failure is a :class:`JOSEError` (a ``ValueError``) whose message is safe to show; the
callers map it to their own exceptions (``InvalidToken``, ``InvalidDPoPProof``, a skipped key).

Building a cryptography key object costs more than the rest of a proof check, so public keys are
kept in a small LRU keyed by the key's RFC 7638 required members — what the thumbprint hashes,
and exactly the key's public parameters — and the thumbprint is computed once per key.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import Algorithm, get_default_algorithms

#: Asymmetric JWS algorithms and the key type (and curves, when it matters) each one needs.
#: ``none`` and HMAC are absent on purpose: no setting can make us accept them.
ALGORITHM_KEYS: dict[str, tuple[str, frozenset[str]]] = {
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "RS256": ("RSA", frozenset()),
    "RS384": ("RSA", frozenset()),
    "RS512": ("RSA", frozenset()),
    "PS256": ("RSA", frozenset()),
    "PS384": ("RSA", frozenset()),
    "PS512": ("RSA", frozenset()),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
ASYMMETRIC_ALGORITHMS = frozenset(ALGORITHM_KEYS)

#: Members that make a JWK private or symmetric (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

#: The members RFC 7638 §3.2 hashes, per key type, in lexicographic order.
THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}

#: RSA keys below this size are refused (RFC 7518 §3.3).
MIN_RSA_BITS = 2048
#: Bound on any base64url member, well above an RSA-8192 modulus.
MAX_MEMBER_LENGTH = 2048
KEY_CACHE_SIZE = 512
_EC_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
_OKP_CURVES: dict[str, tuple[Any, int]] = {
    "Ed25519": (ed25519.Ed25519PublicKey, 32),
    "Ed448": (ed448.Ed448PublicKey, 57),
}

#: One verifier object per algorithm, built once (PyJWT's, which needs ``cryptography``).
_VERIFIERS: dict[str, Algorithm] = {
    name: algorithm
    for name, algorithm in get_default_algorithms().items()
    if name in ASYMMETRIC_ALGORITHMS
}
assert set(_VERIFIERS) == ASYMMETRIC_ALGORITHMS, "PyJWT lacks an asymmetric algorithm"
#: ECDSA parameters per algorithm, built once: ES256 is every DPoP proof's algorithm, and PyJWT's
#: verifier builds these and converts the signature through Python helpers on every call.
_ECDSA: dict[str, ec.ECDSA] = {
    "ES256": ec.ECDSA(hashes.SHA256()),
    "ES384": ec.ECDSA(hashes.SHA384()),
    "ES512": ec.ECDSA(hashes.SHA512()),
}

#: RS256/384/512 (RSASSA-PKCS1-v1_5) hashes, built once with the one padding object: the access
#: token's algorithm on every fresh request, where PyJWT's verifier builds both on each call.
_PKCS1 = padding.PKCS1v15()
_RSA_PKCS1: dict[str, hashes.HashAlgorithm] = {
    "RS256": hashes.SHA256(),
    "RS384": hashes.SHA384(),
    "RS512": hashes.SHA512(),
}

#: The base64url alphabet: ``bytes.translate`` deleting these leaves nothing for a valid segment
#: (a C loop, several times faster than a regular expression on every token segment).
B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PADDING = (b"", b"===", b"==", b"=")  # by length % 4; 1 is refused before decoding


class JOSEError(ValueError):
    """Input that is not acceptable JOSE; the message is safe to show (never the input)."""


class JWKError(JOSEError):
    """A JWK that is not an acceptable public key."""


# base64url and JSON -----------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JOSE writes it."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def b64url_decode(data: str | bytes) -> bytes:
    """Strict base64url: the URL-safe alphabet only, no padding (raises JOSEError)."""
    if type(data) is str:
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise JOSEError("not base64url") from None
    elif type(data) is not bytes:
        raise JOSEError("not base64url")
    if data.translate(None, B64URL_ALPHABET) or len(data) % 4 == 1:
        raise JOSEError("not base64url")
    try:  # the alphabet is checked above; translating ourselves skips base64's own copies
        return binascii.a2b_base64(data.translate(_TO_STANDARD) + _PADDING[len(data) % 4])
    except (binascii.Error, ValueError):
        raise JOSEError("not base64url") from None


def _reject_constant(name: str) -> Any:
    raise JOSEError("NaN and Infinity are not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to infinity
        raise JOSEError("number out of range")
    return value


#: The strict decoder (RFC 8259 numbers only). :func:`loads` runs its scanner directly; its
#: ``decode`` is the reference the tests hold that fast path to.
STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
#: The decoder's own C scanner: ``JSONDecoder.decode`` wraps it in two Python frames and two
#: whitespace regexes, about half the cost of decoding a token's header and payload.
_SCAN: Callable[[str, int], tuple[Any, int]] = STRICT_JSON.scan_once  # type: ignore[attr-defined]  # set in __init__, not in typeshed
#: What JSON calls whitespace (RFC 8259 §2), around the value.
_JSON_WHITESPACE = " \t\n\r"


def loads(data: bytes | str) -> Any:
    """Strict JSON (RFC 8259): UTF-8, no ``NaN``/``Infinity``, only finite numbers.

    Python's own parser accepts ``NaN`` and turns ``1e400`` into infinity; either would make a
    time check pass forever. Raises JOSEError.
    """
    try:
        text = data.decode("utf-8") if type(data) is bytes else data
        if type(text) is not str:
            raise JOSEError("not JSON")
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:  # leading whitespace (or not JSON): the full decoder decides
            return STRICT_JSON.decode(text)
        if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
            raise JOSEError("not JSON")  # extra data after the value
        return value
    except (ValueError, RecursionError):  # JSONDecodeError, JOSEError, UnicodeDecodeError
        raise JOSEError("not JSON") from None


def decode_object(segment: str | bytes) -> dict[str, Any]:
    """A JSON object from a base64url segment (a JWS header or payload); raises JOSEError."""
    value = loads(b64url_decode(segment))
    if type(value) is not dict:
        raise JOSEError("not a JSON object")
    return value


def is_numeric_date(value: Any) -> bool:
    """Whether ``value`` is a JSON number usable as a time (RFC 7519 §2): an integer (of any
    size: Python compares it exactly) or a finite float; never a bool, NaN or infinity."""
    return type(value) is int or (type(value) is float and math.isfinite(value))


# Compact JWS ------------------------------------------------------------------------------------


def split_compact(jws: bytes) -> tuple[bytes, bytes, bytes]:
    """``header.payload.signature`` of a compact JWS, each still base64url (raises JOSEError).

    Header and payload must be non-empty; the signature is checked by :func:`b64url_decode`.
    """
    parts = jws.split(b".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise JOSEError("not a compact JWS")
    return parts[0], parts[1], parts[2]


def parse_compact(jws: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Decode a compact JWS once: header, payload, signing input and signature (raises
    JOSEError). Nothing is verified."""
    header_b64, payload_b64, signature_b64 = split_compact(jws)
    header = decode_object(header_b64)
    payload = decode_object(payload_b64)
    signature = b64url_decode(signature_b64)
    return header, payload, jws[: len(header_b64) + 1 + len(payload_b64)], signature


def unverified_payload(token: str) -> dict[str, Any]:
    """A compact JWS's payload read WITHOUT verification, or ``{}`` when it has none.

    For metadata about a token this process did not verify itself and will not trust for a
    decision (an exchanged token's expiry for the cache columns). Only the payload segment is
    decoded; any input, of any type, gives a dict.
    """
    try:
        return decode_object(split_compact(token.encode("ascii"))[1])
    except (JOSEError, UnicodeEncodeError, AttributeError):
        return {}


# Signatures -------------------------------------------------------------------------------------


def verify(alg: str, key: Any, signing_input: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``signing_input`` is valid for ``key`` with asymmetric
    ``alg``. The caller has checked that the key fits the algorithm (:meth:`PublicJWK.accepts`)."""
    verifier = _VERIFIERS.get(alg)
    if verifier is None:
        return False
    try:
        pkcs1 = _RSA_PKCS1.get(alg)
        if pkcs1 is not None:
            if _key_kind(key) != "RSA":
                return False
            key.verify(signature, signing_input, _PKCS1, pkcs1)
            return True
        ecdsa = _ECDSA.get(alg)
        if ecdsa is not None:
            return _key_kind(key) == "EC" and _verify_ecdsa(key, ecdsa, signing_input, signature)
        return bool(verifier.verify(signing_input, key, signature))  # PS*, EdDSA
    except InvalidSignature:
        return False
    except (ValueError, TypeError, AttributeError):  # a signature or key of the wrong shape
        return False


#: Key kind per concrete key class, for :func:`verify`'s fast paths. cryptography's key types
#: are ABCs its Rust classes register with, so ``isinstance`` runs the ABC machinery on every
#: signature; the class of a key never changes kind, so it is asked once per class.
_KEY_KINDS: dict[type, str | None] = {}


def _key_kind(key: Any) -> str | None:
    """The kind of a cryptography public key: "RSA", "EC", or None for any other."""
    cls = type(key)
    try:
        return _KEY_KINDS[cls]
    except KeyError:
        kind = (
            "RSA"
            if isinstance(key, rsa.RSAPublicKey)
            else "EC"
            if isinstance(key, ec.EllipticCurvePublicKey)
            else None
        )
        _KEY_KINDS[cls] = kind
        return kind


def _verify_ecdsa(
    key: ec.EllipticCurvePublicKey, ecdsa: ec.ECDSA, signing_input: bytes, signature: bytes
) -> bool:
    """A JWS ECDSA signature (RFC 7518 §3.4: R and S, each as long as the curve's order, end to
    end) checked as the DER signature cryptography takes; any other length is invalid."""
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        return False
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    try:
        key.verify(encode_dss_signature(r, s), signing_input, ecdsa)
    except InvalidSignature:
        return False
    return True


def key_fits(alg: str, kty: Any, crv: Any) -> bool:
    """Whether a key of type ``kty`` (on curve ``crv``) may verify ``alg`` signatures."""
    rule = ALGORITHM_KEYS.get(alg) if type(alg) is str else None
    if rule is None or kty != rule[0]:
        return False
    curves = rule[1]
    return not curves or (type(crv) is str and crv in curves)


# JWKs -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicJWK:
    """A validated public key from a JWK, with its RFC 7638 thumbprint."""

    kty: str
    crv: str | None
    key: Any
    jkt: str

    def accepts(self, alg: str) -> bool:
        """Whether this key may verify ``alg`` signatures (no algorithm confusion)."""
        return key_fits(alg, self.kty, self.crv)


def _members(jwk: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The key type and its RFC 7638 required member values, validated (raises JWKError)."""
    kty = jwk.get("kty")
    names = THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if names is None or not isinstance(kty, str):
        raise JWKError("unsupported key type")
    values: list[str] = []
    for name in names:
        value = jwk.get(name)
        if type(value) is not str or not value or len(value) > MAX_MEMBER_LENGTH:
            raise JWKError("missing or malformed key member")
        values.append(value)
    return kty, tuple(values)


def _canonical(kty: str, values: tuple[str, ...]) -> str:
    members = dict(zip(THUMBPRINT_MEMBERS[kty], values, strict=True))
    return json.dumps(members, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def canonical_json(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: the required members only, sorted, no whitespace (raises JWKError)."""
    return _canonical(*_members(jwk))


def thumbprint_of_canonical(canonical: str) -> str:
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an EC, RSA or OKP JWK, base64url without padding."""
    return thumbprint_of_canonical(canonical_json(jwk))


def is_private_jwk(jwk: Mapping[str, Any]) -> bool:
    """Whether ``jwk`` carries private or symmetric key material."""
    return not PRIVATE_MEMBERS.isdisjoint(jwk)


def check_public_jwk(jwk: Any, alg: str | None = None) -> tuple[str, tuple[str, ...]]:
    """Return the key type and required members of ``jwk`` if it is a public key that may
    verify ``alg`` (raises JWKError).

    With ``alg`` (a DPoP proof's header), the JWK's own ``alg``, if any, must equal it. Without
    (a JWKS entry), the JWK's ``alg``, if not null, must be an asymmetric algorithm it fits.
    """
    if type(jwk) is not dict:
        raise JWKError("jwk is not a JSON object")
    if is_private_jwk(jwk):
        raise JWKError("jwk must be a public key")
    declared = jwk.get("alg")
    if alg is None:
        if declared is not None:
            if type(declared) is not str or declared not in ASYMMETRIC_ALGORITHMS:
                raise JWKError("unsupported alg")
            if not key_fits(declared, jwk.get("kty"), jwk.get("crv")):
                raise JWKError("jwk does not match its alg")
    elif ("alg" in jwk and declared != alg) or not key_fits(alg, jwk.get("kty"), jwk.get("crv")):
        raise JWKError("jwk does not match alg")
    return _members(jwk)


def public_key_from_jwk(jwk: Any, alg: str | None = None) -> PublicJWK:
    """The public key of ``jwk`` (for ``alg`` when given; see :func:`check_public_jwk`), from
    the LRU when seen before. The one way this app turns a JWK into a key; raises JWKError."""
    return _key_from_members(*check_public_jwk(jwk, alg))


@lru_cache(maxsize=KEY_CACHE_SIZE)
def _key_from_members(kty: str, values: tuple[str, ...]) -> PublicJWK:
    """Keyed by exactly what the thumbprint hashes, so equal keys share one entry."""
    members = dict(zip(THUMBPRINT_MEMBERS[kty], values, strict=True))
    try:
        if kty == "EC":
            curve, size = _EC_CURVES[members["crv"]]
            x, y = b64url_decode(members["x"]), b64url_decode(members["y"])
            if len(x) != size or len(y) != size:
                raise JWKError("EC key coordinates have the wrong length")
            key: Any = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + x + y)
            crv: str | None = members["crv"]
        elif kty == "RSA":
            n = int.from_bytes(b64url_decode(members["n"]), "big")
            e = int.from_bytes(b64url_decode(members["e"]), "big")
            if n.bit_length() < MIN_RSA_BITS:
                raise JWKError(f"RSA key is too small (under {MIN_RSA_BITS} bits)")
            key = rsa.RSAPublicNumbers(e, n).public_key()
            crv = None
        else:
            key_class, size = _OKP_CURVES[members["crv"]]
            x = b64url_decode(members["x"])
            if len(x) != size:
                raise JWKError("OKP key has the wrong length")
            key = key_class.from_public_bytes(x)
            crv = members["crv"]
    except JWKError:
        raise
    except (KeyError, ValueError) as error:  # unknown curve, bad base64url, not on the curve
        raise JWKError("jwk is not a valid public key") from error
    jkt = thumbprint_of_canonical(_canonical(kty, values))
    return PublicJWK(kty=kty, crv=crv, key=key, jkt=jkt)

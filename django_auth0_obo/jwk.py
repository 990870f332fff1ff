"""Public JWKs for DPoP: RFC 7638 thumbprints and public keys built from them.

A DPoP proof carries its own public key. Building a cryptography key object costs more than the
rest of a proof check, so keys are kept in a small LRU keyed by the key's RFC 7638 required
members — what the thumbprint hashes, and exactly the key's public parameters — and the
thumbprint is computed once per key, not once per proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import Algorithm, get_default_algorithms

#: Members that make a JWK private or symmetric (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

#: The members RFC 7638 §3.2 hashes, per key type, in lexicographic order.
THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}

#: Asymmetric JWS algorithms and the key type (and curves) each one needs.
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

_EC_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
_OKP_CURVES: dict[str, tuple[Any, int]] = {
    "Ed25519": (ed25519.Ed25519PublicKey, 32),
    "Ed448": (ed448.Ed448PublicKey, 57),
}

#: RSA keys below this size are refused (RFC 7518 §3.3).
MIN_RSA_BITS = 2048
#: Bound on any base64url member, well above an RSA-8192 modulus.
MAX_MEMBER_LENGTH = 2048
KEY_CACHE_SIZE = 512

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class JWKError(ValueError):
    """A JWK that is not an acceptable public key; the message is safe to show."""


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    """Strict base64url: the URL-safe alphabet only, no padding (raises ValueError)."""
    if not _B64URL.fullmatch(data) or len(data) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error


def _members(jwk: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The key type and its RFC 7638 required member values, validated (raises JWKError)."""
    kty = jwk.get("kty")
    names = THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if names is None or not isinstance(kty, str):
        raise JWKError("unsupported key type")
    values: list[str] = []
    for name in names:
        value = jwk.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_MEMBER_LENGTH:
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


@dataclass(frozen=True, slots=True)
class PublicJWK:
    """A verified public key from a JWK, with its thumbprint."""

    kty: str
    crv: str | None
    key: Any
    jkt: str


def check_public_jwk(jwk: Any, alg: str) -> tuple[str, tuple[str, ...]]:
    """Return the key type and required members of ``jwk`` if it is a public key for ``alg``."""
    if not isinstance(jwk, dict):
        raise JWKError("jwk is not a JSON object")
    if not PRIVATE_MEMBERS.isdisjoint(jwk):
        raise JWKError("jwk must be a public key")
    kty, curves = ALGORITHM_KEYS[alg]
    if jwk.get("kty") != kty or (curves and jwk.get("crv") not in curves):
        raise JWKError("jwk does not match alg")
    if "alg" in jwk and jwk["alg"] != alg:
        raise JWKError("jwk does not match alg")
    return _members(jwk)


def load_public_jwk(jwk: Any, alg: str) -> PublicJWK:
    """The public key of ``jwk`` for ``alg`` (raises JWKError), from the LRU when seen before."""
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
                raise JWKError("RSA key is too small")
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
    except (KeyError, ValueError) as error:
        raise JWKError("jwk is not a valid public key") from error
    jkt = thumbprint_of_canonical(_canonical(kty, values))
    return PublicJWK(kty=kty, crv=crv, key=key, jkt=jkt)


_ALGORITHMS: dict[str, Algorithm] = {}


def verify_signature(alg: str, key: Any, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``message`` is valid for ``key`` with asymmetric ``alg``."""
    if alg not in ASYMMETRIC_ALGORITHMS:
        return False
    algorithm = _ALGORITHMS.get(alg)
    if algorithm is None:
        algorithm = _ALGORITHMS.setdefault(alg, get_default_algorithms()[alg])
    return bool(algorithm.verify(message, key, signature))

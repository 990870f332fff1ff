"""JWK helpers shared by the stand-in's tenant side and its DPoP client side.

Written here rather than imported from the app so the stand-in can catch the app's own bugs:
RFC 7638 thumbprints and RFC 9449 ``ath`` values are computed independently.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

_OKP_KEYS = (
    ed25519.Ed25519PrivateKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PrivateKey,
    ed448.Ed448PublicKey,
)

#: Members a public JWK must not carry (RSA, EC and OKP private parts, symmetric ``k``).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

#: The members RFC 7638 §3.2 hashes, per key type, in lexicographic order.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JOSE wants it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of ``jwk``, base64url without padding."""
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(str(kty))
    if members is None:
        raise ValueError(f"unsupported kty for a thumbprint: {kty!r}")
    missing = [m for m in members if m not in jwk]
    if missing:
        raise ValueError(f"JWK lacks required members: {', '.join(missing)}")
    canonical = json.dumps(
        {m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True, ensure_ascii=False
    )
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """RFC 9449 ``ath``: base64url(SHA-256(ASCII access token)), no padding."""
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


def public_jwk(key: Any) -> dict[str, Any]:
    """The public JWK (no private members) of a cryptography key, public or private."""
    return _to_jwk(key.public_key() if hasattr(key, "private_bytes") else key)


def private_jwk(key: Any) -> dict[str, Any]:
    """The full JWK of a cryptography private key, private members included."""
    return _to_jwk(key)


def is_public_jwk(jwk: Mapping[str, Any]) -> bool:
    """True when ``jwk`` carries no private or symmetric key material."""
    return not (PRIVATE_MEMBERS & set(jwk))


def _to_jwk(key: Any) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        jwk = dict(RSAAlgorithm.to_jwk(key, as_dict=True))
    elif isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        jwk = dict(ECAlgorithm.to_jwk(key, as_dict=True))
    elif isinstance(key, _OKP_KEYS):
        jwk = dict(OKPAlgorithm.to_jwk(key, as_dict=True))
    else:
        raise TypeError(f"unsupported key type: {type(key).__name__}")
    jwk.pop("key_ops", None)  # pyjwt adds it; Auth0's JWKS and DPoP headers do not carry it
    return jwk

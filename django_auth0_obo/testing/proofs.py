"""DPoP (RFC 9449) for tests: a client-side key that writes proofs, good or deliberately bad,
and the minimal proof check the stand-in's token endpoint performs.

Independent of the app's own DPoP code on purpose, so each can catch the other's mistakes.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from django_auth0_obo.testing.jwk_encoding import (
    access_token_hash,
    b64url_decode,
    is_public_jwk,
    jwk_thumbprint,
    private_jwk,
    public_jwk,
)
from django_auth0_obo.testing.jws import encode_jws, merge
from django_auth0_obo.testing.tenant_keys import EC_CURVES, RSA_ALGORITHMS, PrivateKey

#: Algorithms :meth:`DPoPKey.generate` can make keys for.
DPOP_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")
_CURVE_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _infer_alg(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _CURVE_ALGS[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise TypeError(f"unsupported DPoP key type: {type(key).__name__}")


def normalize_htu(url: str) -> str:
    """``url`` without query and fragment, scheme and host lower-cased, default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in {("https", 443), ("http", 80)}:
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


@dataclass(frozen=True)
class DPoPKey:
    """A client's DPoP key pair; :meth:`proof` writes the ``DPoP`` header value."""

    private_key: PrivateKey = field(repr=False)
    alg: str = "ES256"

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        """A fresh key: ES256/ES384/ES512 (P-curves), RS256/PS256 (RSA-2048), EdDSA (Ed25519)."""
        if alg not in DPOP_ALGORITHMS:
            raise ValueError(f"unsupported DPoP algorithm: {alg}")
        key: PrivateKey
        if alg in RSA_ALGORITHMS:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg in EC_CURVES:
            key = ec.generate_private_key(EC_CURVES[alg])
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        return cls(private_key=key, alg=alg)

    @classmethod
    def from_private_key(cls, key: PrivateKey, alg: str | None = None) -> DPoPKey:
        return cls(private_key=key, alg=alg or _infer_alg(key))

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], alg: str | None = None) -> DPoPKey:
        """From a private JWK (as produced by :attr:`private_jwk`)."""
        key = jwt.PyJWK(dict(jwk)).key
        if not hasattr(key, "private_bytes"):
            raise ValueError("a DPoP key needs the private JWK")
        return cls.from_private_key(key, alg or jwk.get("alg"))

    @classmethod
    def from_pem(cls, pem: bytes | str, alg: str | None = None) -> DPoPKey:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        key = serialization.load_pem_private_key(data, password=None)
        return cls.from_private_key(key, alg)  # type: ignore[arg-type]

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK that goes in the proof header (no private members)."""
        return public_jwk(self.private_key)

    @property
    def private_jwk(self) -> dict[str, Any]:
        """The full JWK including private members — e.g. for ``DPOP_CLIENT_KEY``."""
        return private_jwk(self.private_key)

    @property
    def private_pem(self) -> str:
        """PKCS#8 PEM of the private key — e.g. for ``DPOP_CLIENT_KEY``."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @property
    def jkt(self) -> str:
        """RFC 7638 SHA-256 thumbprint of the public key: what ``cnf.jkt`` must hold."""
        return jwk_thumbprint(self.public_jwk)

    def proof(
        self,
        method: str,
        url: str,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: int | float | None = None,
        jti: str | None = None,
        claims: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
        headers: Mapping[str, Any] | None = None,
        jwk: Mapping[str, Any] | None = None,
    ) -> str:
        """A DPoP proof JWT for ``method`` and ``url`` (query and fragment stripped for ``htu``).

        ``ath`` is added when ``access_token`` is given. ``claims``/``headers`` merge over the
        defaults (a value of ``REMOVE`` drops the member); ``omit`` drops claims; ``jwk``
        replaces the header key, e.g. with a private JWK or someone else's key. The signature is
        always made with this key and its own algorithm, whatever the header says.
        """
        parts = urlsplit(url)
        payload: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            "iat": int(time.time()) if iat is None else iat,
        }
        if access_token is not None:
            payload["ath"] = access_token_hash(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        header = merge(
            {
                "typ": "dpop+jwt",
                "alg": self.alg,
                "jwk": self.public_jwk if jwk is None else dict(jwk),
            },
            headers,
        )
        return encode_jws(header, merge(payload, claims, omit), self.private_key, self.alg)


class ProofError(Exception):
    """A DPoP proof the token endpoint refuses; the message is safe to return to the client."""


@dataclass(frozen=True)
class CheckedProof:
    jkt: str
    header: dict[str, Any]
    claims: dict[str, Any]


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    algorithms: Iterable[str],
    max_age: int = 300,
    max_skew: int = 60,
    now: float | None = None,
) -> CheckedProof:
    """Check a proof as a token endpoint does (no ``ath``/``cnf``): typ, alg, public jwk,
    signature, htm, htu, iat window and a present ``jti``. Replay and nonce are the caller's."""
    parts = proof.split(".")
    if len(parts) != 3:
        raise ProofError("DPoP proof is not a compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except ValueError as exc:
        raise ProofError("DPoP proof header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise ProofError("DPoP proof header is not a JSON object")
    if header.get("typ") != "dpop+jwt":
        raise ProofError("DPoP proof typ must be dpop+jwt")
    alg = header.get("alg")
    if alg not in set(algorithms):
        raise ProofError("DPoP proof alg is not supported")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise ProofError("DPoP proof has no jwk header")
    if not is_public_jwk(jwk):
        raise ProofError("DPoP proof jwk must be a public key")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        payload = jwt.PyJWS().decode(proof, key=key.key, algorithms=[alg])
        claims = json.loads(payload)
    except (jwt.PyJWKError, jwt.InvalidTokenError, ValueError) as exc:
        raise ProofError("DPoP proof signature is invalid") from exc
    if not isinstance(claims, dict):
        raise ProofError("DPoP proof payload is not a JSON object")
    if claims.get("htm") != method:
        raise ProofError("DPoP proof htm does not match the request method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
        raise ProofError("DPoP proof htu does not match the request URL")
    iat = claims.get("iat")
    current = time.time() if now is None else now
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise ProofError("DPoP proof iat is missing")
    if iat < current - max_age or iat > current + max_skew:
        raise ProofError("DPoP proof iat is outside the acceptable window")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise ProofError("DPoP proof jti is missing")
    return CheckedProof(jkt=jwk_thumbprint(jwk), header=header, claims=claims)

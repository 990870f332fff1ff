"""The stand-in tenant's signing keys: generation, JWKS export and rotation.

RSA generation costs tens of milliseconds, so the default RS256 key is generated once per process
and shared by every tenant that does not ask for fresh keys; keys added later (rotation) are
always fresh.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from django_auth0_obo.testing.jwk_encoding import jwk_thumbprint, public_jwk

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}
SUPPORTED_ALGORITHMS = frozenset(RSA_ALGORITHMS | set(EC_CURVES) | {"EdDSA"})

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_cache_lock = threading.Lock()
_cached_rsa: rsa.RSAPrivateKey | None = None


def generate_private_key(alg: str) -> PrivateKey:
    """A fresh private key suited to the JWS algorithm ``alg``."""
    if alg in RSA_ALGORITHMS:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[alg])
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm: {alg}")


def cached_rsa_key() -> rsa.RSAPrivateKey:
    """The process-wide RSA-2048 key used as the default signing key, generated once."""
    global _cached_rsa
    with _cache_lock:
        if _cached_rsa is None:
            _cached_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _cached_rsa


@dataclass(frozen=True)
class SigningKey:
    """One tenant key: its ``kid``, the JWS algorithm it signs with and the private key."""

    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)

    @classmethod
    def generate(
        cls, alg: str = "RS256", kid: str | None = None, *, fresh: bool = True
    ) -> SigningKey:
        """A new key; ``fresh=False`` reuses the cached RSA key (RSA algorithms only)."""
        if alg in RSA_ALGORITHMS and not fresh:
            private_key: PrivateKey = cached_rsa_key()
        else:
            private_key = generate_private_key(alg)
        return cls(
            kid=kid or jwk_thumbprint(public_jwk(private_key)), alg=alg, private_key=private_key
        )

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The JWKS entry: public members plus ``kid``, ``alg`` and ``use: sig``."""
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_key_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM, e.g. as the HMAC secret of an alg-confusion token."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class KeyRing:
    """The tenant's keys: which exist, which are published in the JWKS, which one signs.

    Retiring a key only unpublishes it, so tests can still mint with it and expect a refusal.
    """

    def __init__(self, initial: SigningKey) -> None:
        self._lock = threading.RLock()
        self._keys: dict[str, SigningKey] = {initial.kid: initial}
        self._published: list[str] = [initial.kid]
        self._signing_kid = initial.kid

    def add(
        self,
        alg: str = "RS256",
        kid: str | None = None,
        *,
        publish: bool = True,
        key: SigningKey | None = None,
    ) -> str:
        """Add a fresh (or the given) key and return its kid; published unless told otherwise."""
        new = key or SigningKey.generate(alg, kid)
        with self._lock:
            if new.kid in self._keys:
                raise ValueError(f"a key with kid {new.kid!r} already exists")
            self._keys[new.kid] = new
            if publish:
                self._published.append(new.kid)
        return new.kid

    def publish(self, kid: str) -> None:
        """Publish an existing key in the JWKS (no-op when already published)."""
        with self._lock:
            self.get(kid)
            if kid not in self._published:
                self._published.append(kid)

    def retire(self, kid: str) -> None:
        """Remove a key from the JWKS; it stays available for deliberate minting."""
        with self._lock:
            self.get(kid)
            if kid in self._published:
                self._published.remove(kid)

    def rotate(self, alg: str | None = None) -> str:
        """Add a published key and make it the signing key; the old one stays published."""
        with self._lock:
            kid = self.add(alg or self.signing_key.alg)
            self._signing_kid = kid
            return kid

    def use(self, kid: str) -> None:
        """Make an existing key the signing key."""
        with self._lock:
            self.get(kid)
            self._signing_kid = kid

    def get(self, kid: str) -> SigningKey:
        with self._lock:
            try:
                return self._keys[kid]
            except KeyError:
                raise KeyError(f"no key with kid {kid!r}") from None

    def has(self, kid: str) -> bool:
        with self._lock:
            return kid in self._keys

    def is_published(self, kid: str) -> bool:
        with self._lock:
            return kid in self._published

    @property
    def signing_key(self) -> SigningKey:
        with self._lock:
            return self._keys[self._signing_kid]

    @property
    def published(self) -> list[SigningKey]:
        with self._lock:
            return [self._keys[kid] for kid in self._published]

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set document, published keys in publication order."""
        return {"keys": [key.public_jwk() for key in self.published]}

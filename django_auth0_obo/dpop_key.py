"""This API's own DPoP key (``DPOP_CLIENT_KEY``), used to sign the proofs we send.

An EC P-256 private key, given as a PEM string or a JWK (dict or JSON string). It is parsed once
per settings generation; every error names the setting and never echoes the key material.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from django_auth0_obo import jose
from django_auth0_obo.exceptions import ConfigurationError
from django_auth0_obo.jose import b64url_decode, b64url_encode, jwk_thumbprint
from django_auth0_obo.parsed_setting import ParsedSetting

_NOT_P256 = "DPOP_CLIENT_KEY must be an EC P-256 private key (PEM, or a JWK with d, x and y)."


@dataclass(frozen=True)
class ClientKey:
    """A parsed DPOP_CLIENT_KEY: the private key, its public JWK and RFC 7638 thumbprint."""

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    public_jwk: dict[str, str]
    jkt: str
    alg: str = "ES256"


def parse_client_key(value: Any) -> ClientKey:
    """Parse a DPOP_CLIENT_KEY value (PEM str/bytes, JWK dict or JSON string)."""
    if value is None or value == "" or value == {}:
        raise ConfigurationError("DPOP_CLIENT_KEY is not set.")
    if isinstance(value, Mapping):
        private_key = _from_jwk(value)
    elif isinstance(value, bytes | str):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        if text.startswith("{"):
            try:
                jwk = jose.loads(text)
            except jose.JOSEError:
                raise ConfigurationError(_NOT_P256) from None
            if not isinstance(jwk, dict):
                raise ConfigurationError(_NOT_P256)
            private_key = _from_jwk(jwk)
        else:
            private_key = _from_pem(text)
    else:
        raise ConfigurationError(_NOT_P256)
    public_jwk = _public_jwk(private_key)
    return ClientKey(private_key=private_key, public_jwk=public_jwk, jkt=jwk_thumbprint(public_jwk))


def _from_pem(text: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigurationError(_NOT_P256) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError(_NOT_P256)
    return key


def _from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ConfigurationError(_NOT_P256)
    try:
        d, x, y = (b64url_decode(jwk[m]) for m in ("d", "x", "y"))
        if len(d) != 32 or len(x) != 32 or len(y) != 32:
            raise ValueError("wrong length")
        key = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(_NOT_P256) from None
    numbers = key.public_key().public_numbers()
    if numbers.x != int.from_bytes(x, "big") or numbers.y != int.from_bytes(y, "big"):
        raise ConfigurationError("DPOP_CLIENT_KEY: the JWK's x and y do not belong to its d.")
    return key


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }


_parsed_key = ParsedSetting("DPOP_CLIENT_KEY", parse_client_key)


def load_client_key() -> ClientKey:
    """The parsed DPOP_CLIENT_KEY, cached until AUTH0_OBO changes (raises ConfigurationError)."""
    return _parsed_key.get()

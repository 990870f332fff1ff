"""``private_key_jwt`` client authentication (RFC 7523 §2.2, OIDC Core §9) for the token endpoint.

With ``CLIENT_AUTH_METHOD = "private_key_jwt"`` this API proves who it is with a short-lived JWT
signed by its own RSA key (``CLIENT_ASSERTION_KEY``) instead of a shared secret, so a production
tenant need hold no client secret for it. Auth0 accepts RS256, RS384 and PS256 assertions from
RSA keys of 2048 bits or more; we sign RS256, the one every tenant accepts.

Each assertion is used once: ``iss`` and ``sub`` are the client id, ``aud`` the token endpoint URL
the assertion is sent to, ``exp`` :data:`ASSERTION_LIFETIME` seconds away and ``jti`` random, so
the tenant can refuse a replayed one. The key is parsed once per settings generation; errors name
the setting and never echo key material.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.views.decorators.debug import sensitive_variables

from django_auth0_obo import jose
from django_auth0_obo.exceptions import ConfigurationError
from django_auth0_obo.jose import MIN_RSA_BITS
from django_auth0_obo.parsed_setting import ParsedSetting

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHM = "RS256"
#: Seconds an assertion stays valid: enough for one request, too little to be worth stealing.
ASSERTION_LIFETIME = 60

_NOT_RSA = (
    "CLIENT_ASSERTION_KEY must be an RSA private key of at least "
    f"{MIN_RSA_BITS} bits (PEM, or a JWK with n, e, d, p, q)."
)


@dataclass(frozen=True)
class AssertionKey:
    """A parsed CLIENT_ASSERTION_KEY: the private key and the ``kid`` to name it by, if any."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    kid: str | None = None


def parse_assertion_key(value: Any) -> AssertionKey:
    """Parse a CLIENT_ASSERTION_KEY value: PEM (str/bytes), JWK (dict or JSON string)."""
    if value is None or value == "" or value == {}:
        raise ConfigurationError("CLIENT_ASSERTION_KEY is not set.")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = jose.loads(value)
        except ValueError:
            raise ConfigurationError(_NOT_RSA) from None
    if isinstance(value, Mapping):
        key, kid = _from_jwk(value)
    elif isinstance(value, str):
        key, kid = _from_pem(value.strip()), None
    else:
        raise ConfigurationError(_NOT_RSA)
    if key.key_size < MIN_RSA_BITS:
        raise ConfigurationError(
            f"CLIENT_ASSERTION_KEY is {key.key_size} bits; Auth0 needs at least {MIN_RSA_BITS}."
        )
    return AssertionKey(private_key=key, kid=kid)


def _from_pem(text: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigurationError(_NOT_RSA) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(_NOT_RSA)
    return key


def _from_jwk(jwk: Mapping[str, Any]) -> tuple[rsa.RSAPrivateKey, str | None]:
    if jwk.get("kty") != "RSA" or "d" not in jwk:
        raise ConfigurationError(_NOT_RSA)
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=ASSERTION_ALGORITHM).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError, TypeError, ValueError):
        raise ConfigurationError(_NOT_RSA) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(_NOT_RSA)
    kid = jwk.get("kid")
    return key, kid if isinstance(kid, str) and kid else None


_parsed_key = ParsedSetting("CLIENT_ASSERTION_KEY", parse_assertion_key)


def load_assertion_key() -> AssertionKey:
    """The parsed CLIENT_ASSERTION_KEY, cached until AUTH0_OBO changes."""
    return _parsed_key.get()


@sensitive_variables()  # the private key, and the signed assertion itself
def make_assertion(client_id: str, token_endpoint: str) -> str:
    """A fresh single-use client assertion for one POST to ``token_endpoint``."""
    key = load_assertion_key()
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(24),
    }
    headers = {"kid": key.kid} if key.kid else None
    return jwt.encode(claims, key.private_key, algorithm=ASSERTION_ALGORITHM, headers=headers)


@sensitive_variables()
def assertion_form(client_id: str, token_endpoint: str) -> dict[str, str]:
    """The form fields that authenticate this client with ``private_key_jwt``."""
    return {
        "client_id": client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": make_assertion(client_id, token_endpoint),
    }

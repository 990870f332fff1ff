"""The stand-in's ``private_key_jwt`` check (RFC 7523 §3), refusing what Auth0 refuses.

A client registered with a public key (``tenant.add_client(..., public_key=...)``) may
authenticate with a client assertion: a JWT signed RS256, RS384 or PS256 by that key, with
``iss`` and ``sub`` the client id, ``aud`` the token endpoint URL (or the issuer, which Auth0 also
accepts), an ``exp`` not yet passed and at most :data:`MAX_LIFETIME` ahead, and a ``jti`` never
seen before. Independent of the app's own signing code, so each can catch the other's mistakes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from django_auth0_obo.testing.config import ClientConfig


class AssertionAudience(Protocol):
    """What the check needs of the tenant state (a Protocol: the state imports this module)."""

    clients: dict[str, ClientConfig]
    assertion_jtis: AssertionJtis

    @property
    def token_endpoint(self) -> str: ...

    @property
    def issuer(self) -> str: ...


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: What Auth0 accepts for client assertions.
ASSERTION_ALGORITHMS = ("RS256", "RS384", "PS256")
MIN_RSA_BITS = 2048
#: Longest ``exp - now`` accepted, seconds: an assertion is for one request.
MAX_LIFETIME = 300
_CLOCK_SKEW = 30


class AssertionRefused(Exception):
    """The assertion is refused; the message is safe to return (``invalid_client``)."""


def load_public_key(value: Any) -> rsa.RSAPublicKey:
    """A registered client key: an RSA public key object, PEM, or public JWK (2048+ bits)."""
    key: Any = value
    if isinstance(value, Mapping):
        key = jwt.PyJWK(dict(value)).key
    elif isinstance(value, bytes | str):
        data = value.encode("ascii") if isinstance(value, str) else value
        key = serialization.load_pem_public_key(data)
    if isinstance(key, rsa.RSAPrivateKey):
        key = key.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a private_key_jwt client key must be an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"Auth0 needs RSA keys of at least {MIN_RSA_BITS} bits")
    return key


class AssertionJtis:
    """The ``jti`` values seen, kept while their assertions could still be valid."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, client_id: str, jti: str, exp: float) -> bool:
        now = time.time()
        key = f"{client_id}\x00{jti}"
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if key in self._seen:
                return False
            self._seen[key] = max(exp, now) + _CLOCK_SKEW
            return True


def authenticate_assertion(state: AssertionAudience, form: Mapping[str, Any]) -> ClientConfig:
    """The client a ``client_assertion`` form authenticates; raises AssertionRefused."""
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise AssertionRefused(f"client_assertion_type must be {ASSERTION_TYPE}.")
    assertion = form.get("client_assertion")
    if not isinstance(assertion, str) or not assertion:
        raise AssertionRefused("client_assertion is missing.")
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise AssertionRefused("client_assertion is not a JWT.") from exc
    client_id = unverified.get("iss")
    client = state.clients.get(client_id) if isinstance(client_id, str) else None
    if client is None or client.public_key is None:
        raise AssertionRefused("Unknown client or no key registered for private_key_jwt.")
    if form.get("client_id", client_id) != client_id:
        raise AssertionRefused("client_id does not match the assertion's issuer.")
    try:
        claims = jwt.decode(
            assertion,
            load_public_key(client.public_key),
            algorithms=list(ASSERTION_ALGORITHMS),
            audience=[state.token_endpoint, state.issuer],
            issuer=client_id,
            leeway=_CLOCK_SKEW,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.InvalidTokenError as exc:
        raise AssertionRefused(f"Invalid client assertion ({type(exc).__name__}).") from exc
    if claims["sub"] != client_id:
        raise AssertionRefused("The assertion's sub must be the client id.")
    if claims["exp"] > time.time() + MAX_LIFETIME:
        raise AssertionRefused("The assertion's exp is too far in the future.")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti:
        raise AssertionRefused("The assertion's jti is malformed.")
    if not state.assertion_jtis.first_use(client_id, jti, float(claims["exp"])):
        raise AssertionRefused("The assertion's jti was already used.")
    return client

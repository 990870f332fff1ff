"""Server-issued DPoP nonces at this API (RFC 9449 §9), stateless so every worker agrees.

With ``DPOP_NONCE = True`` a DPoP proof must carry a ``nonce`` this API issued recently; a proof
without one is answered 401 ``use_dpop_nonce`` with a fresh nonce in the ``DPoP-Nonce`` header,
and the client retries. This bounds how long a proof made on a compromised client stays usable,
since its ``iat`` alone is chosen by the client.

A nonce is ``base64url(window || HMAC-SHA256(key, window)[:16])`` where ``window`` is the number
of the current :data:`WINDOW_SECONDS`-long time slot; it is accepted during its own slot and the
next one, so it lives between one and two slots. The key is derived from Django's ``SECRET_KEY``
with HKDF (its own ``info`` label, so it is useless for anything else), hence any process of the
same project checks any other's nonces with no shared store. Rotating ``SECRET_KEY`` invalidates
outstanding nonces, which costs clients one retry.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from django_auth0_obo.conf import obo_settings
from django_auth0_obo.jose import b64url_decode, b64url_encode

HEADER = "DPoP-Nonce"
#: Length of one nonce time slot; a nonce is accepted for one to two slots.
WINDOW_SECONDS = 120
_WINDOW_BYTES = 8
_MAC_BYTES = 16
#: Exact length of a nonce we issue (base64url of 24 bytes): longer input is refused unparsed.
NONCE_LENGTH = 32
_INFO = b"django_auth0_obo dpop-nonce v1"

_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def _key() -> bytes:
    """The nonce MAC key for the current ``SECRET_KEY`` (derived once per secret)."""
    secret = str(settings.SECRET_KEY)
    try:
        return _keys[secret]
    except KeyError:
        pass
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode("utf-8", "surrogatepass")
    )
    with _lock:
        _keys.clear()
        _keys[secret] = derived
    return derived


def _window(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // WINDOW_SECONDS)


def _mac(window: int) -> bytes:
    message = window.to_bytes(_WINDOW_BYTES, "big")
    return hmac.new(_key(), message, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(now: float | None = None) -> str:
    """A nonce for the current time slot (the same string for every call in that slot)."""
    window = _window(now)
    return b64url_encode(window.to_bytes(_WINDOW_BYTES, "big") + _mac(window))


def is_valid(nonce: Any, now: float | None = None) -> bool:
    """True when ``nonce`` was issued by this project in the current or the previous slot."""
    if not isinstance(nonce, str) or len(nonce) != NONCE_LENGTH:
        return False
    try:
        raw = b64url_decode(nonce)
    except ValueError:
        return False
    if len(raw) != _WINDOW_BYTES + _MAC_BYTES:
        return False
    window = int.from_bytes(raw[:_WINDOW_BYTES], "big")
    current = _window(now)
    if window not in (current, current - 1):
        return False
    return hmac.compare_digest(raw[_WINDOW_BYTES:], _mac(window))


def nonce_check() -> Any:
    """The ``nonce=`` argument for :func:`django_auth0_obo.dpop.verify_proof`: None when off."""
    return is_valid if obo_settings.DPOP_NONCE else None


def header_for(status: int, has_proof: bool) -> str | None:
    """The ``DPoP-Nonce`` value to send with an answer, or None: while DPOP_NONCE is on, every
    401 (``use_dpop_nonce`` or an anonymous challenge) and every answer to a request that carried
    a DPoP proof get a fresh nonce, so clients keep one without a second 401."""
    if obo_settings.DPOP_NONCE and (status == 401 or has_proof):
        return issue()
    return None


_AsgiSend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def asgi_send(send: _AsgiSend, has_proof: bool) -> _AsgiSend:
    """An ASGI ``send`` that adds :func:`header_for`'s nonce to the response it starts."""

    async def send_with_nonce(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            nonce = header_for(message["status"], has_proof)
            if nonce is not None:
                name = HEADER.lower().encode("latin-1")
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != name]
                message = {**message, "headers": [*headers, (name, nonce.encode("ascii"))]}
        await send(message)

    return send_with_nonce

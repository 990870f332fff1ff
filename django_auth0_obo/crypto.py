"""Encryption at rest for cached exchanged tokens (Fernet / MultiFernet).

``TOKEN_ENCRYPTION_KEYS`` lists Fernet keys: the first encrypts, all decrypt, so a new key is
prepended to rotate and an old one removed once its tokens have expired (an hour or so later).
Without the setting, keys are derived from ``SECRET_KEY`` (and ``SECRET_KEY_FALLBACKS``, which
then keep decrypting) with HKDF-SHA256: a database dump alone never yields a usable token.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from django_auth0_obo.conf import obo_settings, on_reload

__all__ = [
    "DecryptionError",
    "decrypt_token",
    "derive_key",
    "encrypt_token",
    "generate_key",
    "validate_keys",
]

#: HKDF domain separation: a key derived here is useless for anything else keyed by SECRET_KEY.
_HKDF_SALT = b"django_auth0_obo"
_HKDF_INFO = b"exchanged-token-cache:fernet"

_lock = threading.Lock()
_fernet: MultiFernet | None = None


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key (rotated out, or tampered)."""


def generate_key() -> str:
    """A fresh Fernet key, for ``TOKEN_ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode("ascii")


def derive_key(secret: str | bytes) -> bytes:
    """A Fernet key derived from ``secret`` (e.g. ``SECRET_KEY``) with HKDF-SHA256."""
    material = secret.encode("utf-8") if isinstance(secret, str) else secret
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        material
    )
    return base64.urlsafe_b64encode(raw)


def validate_keys(value: Any) -> list[bytes]:
    """Return the configured keys as Fernet keys, or raise ``ValueError`` saying what is wrong."""
    if isinstance(value, str | bytes):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("TOKEN_ENCRYPTION_KEYS must be a non-empty list of Fernet keys.")
    keys: list[bytes] = []
    for position, key in enumerate(value):
        if not isinstance(key, str | bytes):
            raise ValueError(f"TOKEN_ENCRYPTION_KEYS[{position}] is not a string.")
        encoded = key.encode("ascii", "replace") if isinstance(key, str) else key
        try:
            Fernet(encoded)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"TOKEN_ENCRYPTION_KEYS[{position}] is not a Fernet key (32 url-safe base64 "
                "bytes, e.g. from django_auth0_obo.crypto.generate_key())."
            ) from exc
        keys.append(encoded)
    return keys


def _configured_keys() -> list[bytes]:
    configured = obo_settings.TOKEN_ENCRYPTION_KEYS
    if configured is not None:
        try:
            return validate_keys(configured)
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from exc
    secrets: Iterable[str] = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [derive_key(secret) for secret in secrets if secret]


def _get_fernet() -> MultiFernet:
    global _fernet
    fernet = _fernet
    if fernet is None:
        with _lock:
            if _fernet is None:
                keys = _configured_keys()
                if not keys:
                    raise ImproperlyConfigured(
                        "No key to encrypt cached tokens: set TOKEN_ENCRYPTION_KEYS or SECRET_KEY."
                    )
                _fernet = MultiFernet([Fernet(key) for key in keys])
            fernet = _fernet
    return fernet


def encrypt_token(token: str) -> str:
    """Encrypt with the first key; the result is ASCII, safe for a text column."""
    return _get_fernet().encrypt(token.encode("utf-8")).decode("ascii")


def decrypt_token(value: str) -> str:
    """Decrypt with whichever configured key wrote ``value``."""
    try:
        return _get_fernet().decrypt(value.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError("Cannot decrypt a cached token with the configured keys.") from exc


@on_reload
def reset() -> None:
    """Forget the key set (settings changed)."""
    global _fernet
    with _lock:
        _fernet = None


def _secret_key_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        reset()


setting_changed.connect(_secret_key_changed)

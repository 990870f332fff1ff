"""Build compact JWS tokens by hand, including the broken ones a verifier must refuse.

pyjwt's ``jwt.encode`` is deliberately careful (it refuses to HMAC-sign with a PEM public key and
always writes ``alg``); a test tenant has to be able to produce exactly the header it is asked for,
so signing goes through pyjwt's algorithm objects directly and HMAC through :mod:`hmac`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from jwt.algorithms import get_default_algorithms

from django_auth0_obo.testing.jwk_encoding import b64url_decode, b64url_encode


class _Remove:
    """Sentinel type: a claim or header member set to :data:`REMOVE` is dropped."""

    _instance: _Remove | None = None

    def __new__(cls) -> _Remove:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REMOVE"

    def __bool__(self) -> bool:
        return False


#: Put this as a value in ``claims=`` or ``headers=`` to drop that member from the token.
REMOVE: Final = _Remove()

_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def merge(
    base: Mapping[str, Any], extra: Mapping[str, Any] | None, omit: Iterable[str] = ()
) -> dict[str, Any]:
    """``base`` updated by ``extra``, dropping :data:`REMOVE` values and names in ``omit``."""
    merged = {**base, **(extra or {})}
    dropped = set(omit)
    return {k: v for k, v in merged.items() if v is not REMOVE and k not in dropped}


def _json_segment(value: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def encode_jws(
    header: Mapping[str, Any], payload: Mapping[str, Any], key: Any, algorithm: str
) -> str:
    """Sign ``header.payload`` with ``algorithm`` exactly as given; the header is not altered.

    ``algorithm`` picks the signing operation only; the header's ``alg`` (if any) is whatever the
    caller put there, so mismatches can be produced on purpose. ``none`` yields an empty signature.
    HMAC algorithms accept any bytes or str secret, including a PEM public key.
    """
    signing_input = f"{_json_segment(header)}.{_json_segment(payload)}".encode("ascii")
    if algorithm == "none":
        signature = b""
    elif algorithm in _HMAC_HASHES:
        secret = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        signature = hmac.new(secret, signing_input, _HMAC_HASHES[algorithm]).digest()
    else:
        algorithms = get_default_algorithms()
        if algorithm not in algorithms:
            raise ValueError(f"unsupported signing algorithm: {algorithm}")
        alg_obj = algorithms[algorithm]
        signature = alg_obj.sign(signing_input, alg_obj.prepare_key(key))
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"


def sign_hs256_raw(
    payload: Mapping[str, Any], secret: bytes | str, headers: Mapping[str, Any] | None = None
) -> str:
    """An HS256 token keyed with raw ``secret`` — e.g. a public-key PEM, for alg confusion tests."""
    header = merge({"alg": "HS256", "typ": "JWT"}, headers)
    return encode_jws(header, payload, secret, "HS256")


def unsigned_token(payload: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
    """An ``alg: none`` token with an empty signature, which every verifier must refuse."""
    header = merge({"alg": "none", "typ": "JWT"}, headers)
    return encode_jws(header, payload, None, "none")


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, payload)`` of a compact JWS without checking anything — for assertions only."""
    header_b64, payload_b64, _ = token.split(".")
    return json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(payload_b64))


def tamper_payload(token: str, **changes: Any) -> str:
    """Rewrite claims of a signed token but keep the old signature, which no longer matches.

    Pass ``name=REMOVE`` to drop a claim.
    """
    header_b64, payload_b64, signature = token.split(".")
    payload = merge(json.loads(b64url_decode(payload_b64)), changes)
    return f"{header_b64}.{_json_segment(payload)}.{signature}"


def tamper_header(token: str, **changes: Any) -> str:
    """Rewrite header members of a signed token, keeping its (now invalid) signature."""
    header_b64, payload_b64, signature = token.split(".")
    header = merge(json.loads(b64url_decode(header_b64)), changes)
    return f"{_json_segment(header)}.{payload_b64}.{signature}"


def tamper_signature(token: str) -> str:
    """Flip one bit of the signature so the token no longer verifies."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    signature = bytearray(b64url_decode(signature_b64) or b"\0")
    signature[0] ^= 0x01
    return f"{header_b64}.{payload_b64}.{b64url_encode(bytes(signature))}"

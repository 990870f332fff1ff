"""Helpers shared by the Bearer tests: reading challenges and proving nothing was written."""

from __future__ import annotations

import re
from typing import Any

from django_auth0_obo.models import DelegationEvent, ExchangedToken

_ERROR = re.compile(r'error="([^"]*)"')
_DESCRIPTION = re.compile(r'error_description="([^"]*)"')


def challenge_error(response: Any) -> str | None:
    """The ``error=`` code of the response's ``WWW-Authenticate`` header (None if absent)."""
    match = _ERROR.search(response.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else None


def challenge_description(response: Any) -> str | None:
    """The ``error_description=`` of the response's ``WWW-Authenticate`` header."""
    match = _DESCRIPTION.search(response.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else None


def nothing_written() -> bool:
    """No exchanged token cached and no audit row: a refused request leaves no trace."""
    return not ExchangedToken.objects.exists() and not DelegationEvent.objects.exists()


def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_with_raw_json(
    header: dict[str, Any], claims: dict[str, Any], members: dict[str, str], key: Any, alg: str
) -> str:
    """A compact JWS of ``header`` and ``claims`` where each of ``members`` is written as the
    given raw JSON text — numbers Python's ``json`` cannot write (``1e400``, ``NaN``) — signed
    with ``key``."""
    import json

    from jwt.algorithms import get_default_algorithms

    claims = {**claims, **{name: f"@@{name}@@" for name in members}}
    payload = json.dumps(claims, separators=(",", ":"))
    for name, text in members.items():
        payload = payload.replace(f'"@@{name}@@"', text)
    header_json = json.dumps(header, separators=(",", ":"))
    signing_input = f"{b64url(header_json.encode())}.{b64url(payload.encode())}".encode()
    algorithm = get_default_algorithms()[alg]
    signature = algorithm.sign(signing_input, algorithm.prepare_key(key))
    return f"{signing_input.decode()}.{b64url(signature)}"


def mint_with_raw_json(tenant: Any, **members: str) -> str:
    """A token signed by ``tenant`` (as ``tenant.mint()`` makes it) whose claims ``members``
    are raw JSON text, e.g. ``exp="1e400"``."""
    from django_auth0_obo.testing.jws import decode_unverified

    header, claims = decode_unverified(tenant.mint())
    signing_key = tenant.keys.signing_key
    return sign_with_raw_json(header, claims, members, signing_key.private_key, signing_key.alg)

"""Access-token verification: the framework-free core behind ``Auth0Authentication``.

The token is parsed once (split, base64url, JSON), its header checked against an asymmetric
allow-list, its signature verified with the tenant key from :mod:`django_auth0_obo.keys`, and its
claims validated here. Verified claims are remembered in a small LRU memo keyed by the SHA-256 of
the token (never the token), so a client repeating its token costs a hash and a dict lookup;
``exp`` and the audience are re-checked on every hit, and an entry never outlives
``JWKS_CACHE_TTL``, a settings reload or a change of the tenant's keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.views.decorators.debug import sensitive_variables

from django_auth0_obo import keys
from django_auth0_obo.act import get_delegation_chain
from django_auth0_obo.conf import as_tuple, obo_settings, on_reload
from django_auth0_obo.exceptions import InvalidActClaim, InvalidToken

#: Claims every access token must carry, besides ``REQUIRED_CLAIMS``.
STANDARD_CLAIMS = ("iss", "sub", "aud", "exp", "iat")

#: ``typ`` header values accepted (compared case-insensitively): Auth0's and RFC 9068's.
ACCEPTED_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})

#: Longest token we look at, in characters.
MAX_TOKEN_LENGTH = 32 * 1024

#: How many verified tokens the memo remembers per process.
MEMO_SIZE = 2048

MALFORMED = "Malformed token."

_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*")


class _Reject(ValueError):
    """NaN and Infinity are not JSON."""


def _reject_constant(name: str) -> Any:
    raise _Reject(name)


_json = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass(frozen=True, slots=True)
class _Policy:
    """What the settings say, gathered once per settings generation for the hot path."""

    algorithms: frozenset[str]
    issuers: frozenset[str]
    audiences: tuple[str, ...]
    leeway: float
    required: tuple[str, ...]
    memo_ttl: float


_policy: _Policy | None = None


def _load_policy() -> _Policy:
    global _policy
    extra = tuple(c for c in obo_settings.REQUIRED_CLAIMS if c not in STANDARD_CLAIMS)
    _policy = _Policy(
        algorithms=frozenset(obo_settings.ALGORITHMS) & keys.ASYMMETRIC_ALGORITHMS,
        issuers=obo_settings.issuers,
        audiences=obo_settings.audiences,
        leeway=float(obo_settings.LEEWAY),
        required=STANDARD_CLAIMS + extra,
        memo_ttl=float(obo_settings.JWKS_CACHE_TTL),
    )
    return _policy


class _Memo:
    """A thread-safe LRU of verified claims, keyed by the token's SHA-256 digest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, tuple[dict[str, Any], float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes, now: float) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if now >= entry[1]:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry[0]

    def put(self, digest: bytes, claims: dict[str, Any], until: float) -> None:
        with self._lock:
            self._entries[digest] = (claims, until)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_memo = _Memo(MEMO_SIZE)


def clear_memo() -> None:
    """Forget every verified token (settings changed, keys changed, or a test wants it)."""
    _memo.clear()


def _reload() -> None:
    global _policy
    _policy = None
    _memo.clear()


on_reload(_reload)
keys.on_keys_changed(clear_memo)
os.register_at_fork(after_in_child=lambda: setattr(_memo, "_lock", threading.Lock()))


class Verification(NamedTuple):
    """What verification matched, so nothing downstream derives it again."""

    claims: dict[str, Any]
    #: The accepted audience the token's ``aud`` matched.
    audience: str
    #: The token's ``cnf.jkt`` (RFC 9449 §6), or None for an unbound token.
    bound_jkt: str | None


def verify_access_token(token: str, *, audiences: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the verified claims of ``token`` or raise InvalidToken / TenantUnavailable.

    ``audiences`` narrows the accepted ``aud`` values (any-of); None means the settings'.
    """
    return verify(token, audiences=audiences).claims


@sensitive_variables()
def verify(token: str, *, audiences: Sequence[str] | str | None = None) -> Verification:
    """:func:`verify_access_token`, returning the matched audience and ``cnf.jkt`` too."""
    policy = _policy or _load_policy()
    audiences = policy.audiences if audiences is None else as_tuple(audiences)
    try:
        raw = token.encode("ascii")
    except (AttributeError, UnicodeEncodeError):
        raise InvalidToken(MALFORMED) from None
    if len(raw) > MAX_TOKEN_LENGTH:
        raise InvalidToken(MALFORMED)
    digest = hashlib.sha256(raw).digest()
    now = time.time()

    remembered = _memo.get(digest, now)
    if remembered is not None:
        if remembered["exp"] <= now - policy.leeway:
            raise InvalidToken("Token has expired.")
        audience = _check_audience(remembered["aud"], audiences)
        return Verification(dict(remembered), audience, bound_jkt(remembered))

    header, claims, signing_input, signature = _parse(raw)
    alg = _check_header(header, policy)
    iss = claims.get("iss")
    if iss is None:
        raise InvalidToken("Missing required claim: iss.")
    if type(iss) is not str or iss not in policy.issuers:
        raise InvalidToken("Invalid issuer.")
    key = keys.get_verification_key(iss, header["kid"], alg)
    try:
        valid = key.verify(alg, signing_input, signature)
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise InvalidToken("Invalid signature.")
    audience = _check_claims(claims, policy, audiences, now)

    if policy.memo_ttl > 0:
        until = now + policy.memo_ttl
        exp = claims["exp"]
        if exp < until - policy.leeway:  # compared, not added: exp may be a huge int
            until = exp + policy.leeway
        _memo.put(digest, claims, until)
    return Verification(dict(claims), audience, bound_jkt(claims))


def bound_jkt(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` a token is bound to, or None when it has none.

    Verified claims never hold a malformed one (:func:`_check_claims` refuses it); for claims
    read without verification a present value of any type counts as bound, so callers fail
    closed.
    """
    cnf = claims.get("cnf")
    if not isinstance(cnf, Mapping) or cnf.get("jkt") is None:
        return None
    return str(cnf["jkt"])


def _parse(raw: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split and decode a compact JWS once: header, payload, signing input and signature."""
    parts = raw.split(b".")
    if len(parts) != 3:
        raise InvalidToken(MALFORMED)
    header_b64, payload_b64, signature_b64 = parts
    if not header_b64 or not payload_b64:
        raise InvalidToken(MALFORMED)
    header = _decode_json(header_b64)
    payload = _decode_json(payload_b64)
    signature = _b64decode(signature_b64)
    return header, payload, raw[: len(header_b64) + 1 + len(payload_b64)], signature


def _b64decode(segment: bytes) -> bytes:
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken(MALFORMED)
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken(MALFORMED) from None


def _decode_json(segment: bytes) -> dict[str, Any]:
    data = _b64decode(segment)
    try:
        value = _json.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidToken(MALFORMED) from None
    if not isinstance(value, dict):
        raise InvalidToken(MALFORMED)
    return value


def _check_header(header: Mapping[str, Any], policy: _Policy) -> str:
    """Return the header's ``alg`` once it is allowed, ``typ`` acceptable and ``kid`` present."""
    alg = header.get("alg")
    if type(alg) is not str or alg not in policy.algorithms:
        raise InvalidToken("Unsupported token algorithm.")
    if "typ" in header:
        typ = header["typ"]
        if type(typ) is not str or typ.lower() not in ACCEPTED_TYPES:
            raise InvalidToken("Unsupported token type.")
    if "crit" in header:
        raise InvalidToken("Unsupported critical header.")
    kid = header.get("kid")
    if type(kid) is not str or not kid:
        raise InvalidToken("Token has no key id.")
    return alg


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _check_claims(
    claims: Mapping[str, Any], policy: _Policy, audiences: Sequence[str], now: float
) -> str:
    """Validate the verified payload (presence, types, times, audience, act and cnf); return
    the audience that matched."""
    for name in policy.required:
        if name not in claims:
            raise InvalidToken(f"Missing required claim: {name}.")
    sub = claims["sub"]
    if type(sub) is not str or not sub:
        raise InvalidToken("Malformed sub claim.")
    leeway = policy.leeway
    exp = claims["exp"]
    if not _is_number(exp):
        raise InvalidToken("Malformed exp claim.")
    if exp <= now - leeway:
        raise InvalidToken("Token has expired.")
    iat = claims["iat"]
    if not _is_number(iat):
        raise InvalidToken("Malformed iat claim.")
    if iat > now + leeway:
        raise InvalidToken("Token was issued in the future.")
    if "nbf" in claims:
        nbf = claims["nbf"]
        if not _is_number(nbf):
            raise InvalidToken("Malformed nbf claim.")
        if nbf > now + leeway:
            raise InvalidToken("Token is not yet valid.")
    audience = _check_audience(claims["aud"], audiences)
    if "act" in claims:
        if claims["act"] is None:
            raise InvalidActClaim()
        get_delegation_chain(claims)
    if "cnf" in claims:
        cnf = claims["cnf"]
        if not isinstance(cnf, dict) or ("jkt" in cnf and not _non_empty_str(cnf["jkt"])):
            raise InvalidToken("Malformed cnf claim.")
    if "scope" in claims and type(claims["scope"]) is not str:
        raise InvalidToken("Malformed scope claim.")
    if "permissions" in claims:
        permissions = claims["permissions"]
        if type(permissions) is not list or not all(type(p) is str for p in permissions):
            raise InvalidToken("Malformed permissions claim.")
    return audience


def _non_empty_str(value: Any) -> bool:
    return type(value) is str and bool(value)


def _check_audience(aud: Any, audiences: Sequence[str]) -> str:
    """Any-of match of the ``aud`` claim (a string or a list of strings) against ``audiences``;
    return the accepted audience that matched."""
    if type(aud) is str:
        if aud in audiences:
            return aud
    elif type(aud) is list and aud and all(type(a) is str for a in aud):
        for accepted in audiences:
            if accepted in aud:
                return accepted
    else:
        raise InvalidToken("Malformed aud claim.")
    raise InvalidToken("Invalid audience.")

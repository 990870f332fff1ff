"""Access-token verification: the framework-free core behind ``Auth0Authentication``.

The token is parsed once by :mod:`django_auth0_obo.jose` (split, strict base64url, strict JSON;
its errors become ``InvalidToken`` here), its header checked against an asymmetric allow-list,
its signature verified with the tenant key from :mod:`django_auth0_obo.keys`, and its claims
validated here. Verified claims are remembered in a small LRU memo keyed by the SHA-256 of
the token (never the token), so a client repeating its token costs a hash and a dict lookup;
``exp`` and the audience are re-checked on every hit, an entry answers only while the keys it
was verified with are fresh, never outlives ``JWKS_CACHE_TTL``, ``MAX_TOKEN_AGE``, a settings
reload or a change of the tenant's keys, and every hit hands out its own copy of the claims.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from django.views.decorators.debug import sensitive_variables

from django_auth0_obo import domains, jose, keys
from django_auth0_obo.act import get_delegation_chain
from django_auth0_obo.conf import as_tuple, obo_settings, on_reload
from django_auth0_obo.exceptions import InvalidActClaim, InvalidToken
from django_auth0_obo.ttl_memo import TtlMemo

#: Claims every access token must carry, besides ``REQUIRED_CLAIMS``.
STANDARD_CLAIMS = ("iss", "sub", "aud", "exp", "iat")

#: ``typ`` header values of RFC 9068 access tokens (compared case-insensitively); with
#: ``REQUIRE_AT_JWT`` the header must carry one of them.
AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: ``typ`` header values accepted otherwise: Auth0's default ``JWT`` too (or no ``typ``).
ACCEPTED_TYPES = AT_JWT_TYPES | {"jwt"}

#: Longest token we look at, in characters.
MAX_TOKEN_LENGTH = 32 * 1024
#: Token headers remembered after their check (see :func:`_checked_header`), and the longest
#: header segment remembered: the tenant's are well under 200 bytes, and a client sending
#: large made-up headers neither fills the cache with them nor pushes the tenant's out often.
HEADER_CACHE_SIZE = 32
MAX_CACHED_HEADER_LENGTH = 512

#: How many verified tokens the memo remembers per process.
MEMO_SIZE = 2048

MALFORMED = "Malformed token."

#: RFC 8705 §3.1: a token bound to a client certificate (mTLS) carries its thumbprint here. This
#: app cannot check the certificate, so such a token is refused, saying so.
CERTIFICATE_THUMBPRINT = "x5t#S256"
CERTIFICATE_BOUND = "Certificate-bound tokens (cnf.x5t#S256) are not supported."


@dataclass(frozen=True, slots=True)
class _Policy:
    """What the settings say, gathered once per settings generation for the hot path."""

    algorithms: frozenset[str]
    issuers: frozenset[str]
    audiences: tuple[str, ...]
    leeway: float
    required: tuple[str, ...]
    #: ``required`` as a set: one subset test on every token, the tuple only for the message.
    required_set: frozenset[str]
    #: The ``REQUIRED_CLAIMS`` beyond the standard ones: present and not null.
    extra_required: tuple[str, ...]
    memo_ttl: float
    #: RFC 9068 strict mode: the header ``typ`` must be ``at+jwt``.
    require_at_jwt: bool
    #: Refuse tokens whose ``iat`` is older than this many seconds (plus leeway); None: any age.
    max_age: float | None


_policy: _Policy | None = None


def _load_policy() -> _Policy:
    global _policy
    extra = tuple(c for c in obo_settings.REQUIRED_CLAIMS if c not in STANDARD_CLAIMS)
    _policy = _Policy(
        algorithms=frozenset(obo_settings.ALGORITHMS) & jose.ASYMMETRIC_ALGORITHMS,
        issuers=obo_settings.issuers,
        audiences=obo_settings.audiences,
        leeway=float(obo_settings.LEEWAY),
        required=STANDARD_CLAIMS + extra,
        required_set=frozenset(STANDARD_CLAIMS + extra),
        extra_required=extra,
        memo_ttl=float(obo_settings.JWKS_CACHE_TTL),
        require_at_jwt=bool(obo_settings.REQUIRE_AT_JWT),
        max_age=None if obo_settings.MAX_TOKEN_AGE is None else float(obo_settings.MAX_TOKEN_AGE),
    )
    return _policy


def _unshared_copy(claims: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of verified claims sharing no dict or list with them, or None when they are
    nested too deeply to copy here (the token is then verified afresh, and not remembered).

    The memo keeps its own copy and hands out another on each hit, so a view that edits
    ``request.auth.claims`` (an ``act`` inside, a ``permissions`` list) changes nothing a later
    request with the same token sees. Claims are JSON: dicts and lists are the only mutable
    values, and most claims are neither."""
    copied = dict(claims)
    try:
        for name, value in claims.items():
            if type(value) in _CONTAINERS:
                copied[name] = _copy_json(value)
    except RecursionError:
        return None
    return copied


_CONTAINERS = (dict, list)


def _copy_json(value: Any) -> Any:
    if type(value) is dict:
        return {
            key: _copy_json(item) if type(item) in _CONTAINERS else item
            for key, item in value.items()
        }
    return [_copy_json(item) if type(item) in _CONTAINERS else item for item in value]


class _Memo(TtlMemo[bytes, dict[str, Any]]):
    """A thread-safe LRU of verified claims, keyed by the token's SHA-256 digest."""


_memo = _Memo(MEMO_SIZE)


def clear_memo() -> None:
    """Forget every verified token (settings changed, keys changed, or a test wants it)."""
    _memo.clear()


def remembered_digests() -> list[bytes]:
    """The SHA-256 digests of the tokens this process remembers as verified (never a token)."""
    return _memo.keys()


def _reload() -> None:
    global _policy
    _policy = None
    _memo.clear()
    _checked_header.cache_clear()


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
    #: SHA-256 of the token's ASCII bytes: the memo's key, and what a DPoP proof's ``ath``
    #: encodes (so the proof check need not hash the token again).
    digest: bytes = b""


def verify_access_token(
    token: str, *, audiences: Sequence[str] | None = None, local_only: bool = False
) -> dict[str, Any]:
    """Return the verified claims of ``token`` or raise InvalidToken / TenantUnavailable.

    ``audiences`` narrows the accepted ``aud`` values (any-of); None means the settings'.
    ``local_only``: raise ``keys.KeysNotWarm`` rather than fetch keys (see ``averify``).
    """
    return verify(token, audiences=audiences, local_only=local_only).claims


def verify_unwrapped(
    token: str, *, audiences: Sequence[str] | str | None = None, local_only: bool = False
) -> Verification:
    """:func:`verify` without its own ``sensitive_variables`` frame, for callers that are one
    already (the request pipeline: Django hides every frame below such a frame, and a wrapper
    per layer cost a measurable share of a request)."""
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

    issuers = domains.accepted_issuers()
    remembered = _memo.get(digest, now)
    if remembered is not None and keys.holds_fresh_keys(remembered["iss"], now):
        if remembered["iss"] not in issuers:  # verified for another request's domains
            raise InvalidToken("Invalid issuer.")
        if remembered["exp"] <= now - policy.leeway:
            raise InvalidToken("Token has expired.")
        audience = _check_audience(remembered["aud"], audiences)
        handed_out = _unshared_copy(remembered)
        if handed_out is not None:
            return Verification(handed_out, audience, bound_jkt(remembered), digest)

    header_b64, claims, signing_input, signature = _parse(raw)
    if len(header_b64) > MAX_CACHED_HEADER_LENGTH:
        alg, kid = _checked_header.__wrapped__(header_b64)
    else:
        alg, kid = _checked_header(header_b64)
    iss = claims.get("iss")
    if iss is None:
        raise InvalidToken("Missing required claim: iss.")
    if type(iss) is not str or iss not in issuers:
        raise InvalidToken("Invalid issuer.")
    key = keys.get_verification_key(iss, kid, alg, local_only=local_only)
    if not key.verify(alg, signing_input, signature):
        raise InvalidToken("Invalid signature.")
    audience = _check_claims(claims, policy, audiences, now)

    if policy.memo_ttl > 0:
        until = now + policy.memo_ttl
        exp = claims["exp"]
        if exp < until - policy.leeway:  # compared, not added: exp may be a huge int
            until = exp + policy.leeway
        if policy.max_age is not None:  # iat is within [now - max_age - leeway, now + leeway]
            until = min(until, claims["iat"] + policy.max_age + policy.leeway)
        remembered = _unshared_copy(claims)
        if remembered is not None:
            _memo.put(digest, remembered, until)
    return Verification(claims, audience, bound_jkt(claims), digest)


#: Verify ``token``: :func:`verify_access_token`, returning the matched audience and ``cnf.jkt``
#: too. Django's error reports show none of its frames' locals.
verify = sensitive_variables()(verify_unwrapped)


def bound_jkt(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` a token is bound to, or None when it has none.

    Verified claims never hold a malformed one (:func:`_check_claims` refuses it); for claims
    read without verification a present value of any type counts as bound, so callers fail
    closed.
    """
    cnf = claims.get("cnf")
    if cnf is None:  # most tokens: skip the ABC ``isinstance`` below
        return None
    if not isinstance(cnf, Mapping) or cnf.get("jkt") is None:
        return None
    return str(cnf["jkt"])


def _parse(raw: bytes) -> tuple[bytes, dict[str, Any], bytes, bytes]:
    """Split a compact JWS and decode its payload and signature once: the header segment (still
    base64url, for :func:`_checked_header`), payload, signing input and signature."""
    try:
        header_b64, payload_b64, signature_b64 = jose.split_compact(raw)
        claims = jose.decode_object(payload_b64)
        signature = jose.b64url_decode(signature_b64)
    except jose.JOSEError:
        raise InvalidToken(MALFORMED) from None
    return header_b64, claims, raw[: len(header_b64) + 1 + len(payload_b64)], signature


@lru_cache(maxsize=HEADER_CACHE_SIZE)
def _checked_header(header_b64: bytes) -> tuple[str, str]:
    """The header's ``alg`` and ``kid`` once it decodes and passes :func:`_check_header`.

    A tenant signs every token with a handful of keys, so the header segment is the same bytes
    on almost every request: remembered by those bytes (judged by the settings' policy, whose
    reload clears it), a known header costs a dict lookup instead of base64, JSON and the
    checks. Refusals raise and are never cached; the signature is verified every time.
    """
    try:
        header = jose.decode_object(header_b64)
    except jose.JOSEError:
        raise InvalidToken(MALFORMED) from None
    return _check_header(header, _policy or _load_policy()), header["kid"]


def _check_header(header: Mapping[str, Any], policy: _Policy) -> str:
    """Return the header's ``alg`` once it is allowed, ``typ`` acceptable and ``kid`` present."""
    alg = header.get("alg")
    if type(alg) is not str or alg not in policy.algorithms:
        raise InvalidToken("Unsupported token algorithm.")
    if policy.require_at_jwt:
        typ = header.get("typ")
        if type(typ) is not str or typ.lower() not in AT_JWT_TYPES:
            raise InvalidToken("Token type must be at+jwt.")
    elif "typ" in header:
        typ = header["typ"]
        if type(typ) is not str or typ.lower() not in ACCEPTED_TYPES:
            raise InvalidToken("Unsupported token type.")
    if "crit" in header:
        raise InvalidToken("Unsupported critical header.")
    kid = header.get("kid")
    if type(kid) is not str or not kid:
        raise InvalidToken("Token has no key id.")
    return alg


def _check_claims(
    claims: Mapping[str, Any], policy: _Policy, audiences: Sequence[str], now: float
) -> str:
    """Validate the verified payload (presence, types, times, audience, act and cnf); return
    the audience that matched."""
    if not claims.keys() >= policy.required_set or (
        policy.extra_required and None in map(claims.__getitem__, policy.extra_required)
    ):  # a REQUIRED_CLAIMS claim that is null is missing (the standard ones are type-checked)
        missing = next(name for name in policy.required if claims.get(name) is None)
        raise InvalidToken(f"Missing required claim: {missing}.")
    sub = claims["sub"]
    if type(sub) is not str or not sub:
        raise InvalidToken("Malformed sub claim.")
    leeway = policy.leeway
    exp = claims["exp"]
    if not jose.is_numeric_date(exp):
        raise InvalidToken("Malformed exp claim.")
    if exp <= now - leeway:
        raise InvalidToken("Token has expired.")
    iat = claims["iat"]
    if not jose.is_numeric_date(iat):
        raise InvalidToken("Malformed iat claim.")
    if iat > now + leeway:
        raise InvalidToken("Token was issued in the future.")
    if policy.max_age is not None and iat < now - policy.max_age - leeway:
        raise InvalidToken("Token is too old.")
    if "nbf" in claims:
        nbf = claims["nbf"]
        if not jose.is_numeric_date(nbf):
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
        if CERTIFICATE_THUMBPRINT in cnf:  # RFC 8705: we cannot see the client's certificate
            raise InvalidToken(CERTIFICATE_BOUND)
        if "jkt" not in cnf:  # a binding we cannot check is never treated as none
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

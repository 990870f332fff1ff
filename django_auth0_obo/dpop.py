"""DPoP (RFC 9449): verify the proofs clients send us, and sign the proofs we send.

``verify_proof`` performs every check of RFC 9449 §4.3 for a resource server, in one pass over
the proof: it is decoded once by :mod:`django_auth0_obo.jose` (whose errors become
``InvalidDPoPProof`` here), its public key comes from that module's small LRU, the claims are
checked first, and the replay record is sent before the signature is verified and confirmed
after, so a shared cache answers while the signature is checked. ``make_proof`` signs proofs
with this API's own key (``DPOP_CLIENT_KEY``), for the token exchange and the downstream call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import jwt
from django.views.decorators.debug import sensitive_variables

from django_auth0_obo import conf, jose, replay
from django_auth0_obo.conf import obo_settings
from django_auth0_obo.dpop_key import ClientKey, load_client_key
from django_auth0_obo.exceptions import InvalidDPoPProof, UseDPoPNonce
from django_auth0_obo.jose import b64url_encode, jwk_thumbprint

__all__ = [
    "ClientKey",
    "access_token_hash",
    "jwk_thumbprint",
    "load_client_key",
    "make_proof",
    "normalize_htu",
    "verify_proof",
]

PROOF_TYPE = "dpop+jwt"
#: Upper bounds on what we parse: a proof with an RSA-4096 key is under 3 KB.
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
MAX_CACHED_URL_LENGTH = 512
#: Proof headers remembered once checked (one per client key; see ``_check_header``), and the
#: longest header segment remembered (an RSA-4096 jwk is about 1 KB of base64url).
HEADER_CACHE_SIZE = 256
MAX_CACHED_HEADER_LENGTH = 2048

_PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: Characters whose escapes are decoded when htu is compared: unreserved, and the ones a path
#: segment may hold literally besides them (RFC 3986 ``pchar``). Never ``/``, ``?``, ``#``, ``%``.
_COMPARED_LITERALLY = _UNRESERVED | frozenset(":@!$&'()*+,;=")
#: Characters a path may hold unescaped (RFC 3986 ``pchar`` and ``/``), plus existing escapes.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_DEFAULT_PORTS = {"http": 80, "https": 443}

NonceCheck = str | Callable[[str | None], bool] | None


# URL normalisation (RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based).


def normalize_htu(url: str) -> str:
    """``url`` as sent in ``htu``: no query or fragment, scheme and host lower-case,
    default port dropped, unreserved characters unescaped, other escapes upper-case, dot
    segments removed, empty path ``/``. Raises ValueError for anything but an http(s) URL."""
    return _normalized(url, compare=False)


def comparable_htu(url: str) -> str:
    """:func:`normalize_htu`, with escapes of the path's ``:@!$&'()*+,;=`` decoded too: the form
    in which a proof's ``htu`` and the request URL are compared (and the replay record named).

    Django escapes ``;`` and ``=`` in the URL it builds (``escape_uri_path``) where clients
    write them literally, and it decodes the path before routing, so this server cannot tell
    ``;`` from ``%3B`` anyway. ``%2F`` stays escaped: it would change the path's segments.
    """
    return _normalized(url, compare=True)


def _normalized(url: str, *, compare: bool) -> str:
    base = url.partition("#")[0].partition("?")[0]
    if len(base) > MAX_CACHED_URL_LENGTH:  # keep the memo small whatever clients send
        return _normalize_base.__wrapped__(base, compare)
    return _normalize_base(base, compare)


@lru_cache(maxsize=1024)
def _normalize_base(url: str, compare: bool) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError("not an absolute http(s) URL without user information")
    host = parts.hostname  # urlsplit lower-cases it and removes IPv6 brackets
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = _PERCENT_ESCAPE.sub(_compare_escape if compare else _normalize_escape, parts.path)
    path = _remove_dot_segments(quote(path, safe=_PATH_SAFE)) or "/"
    return urlunsplit((scheme, host, path, "", ""))


def _normalize_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


def _compare_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _COMPARED_LITERALLY else f"%{match.group(1).upper()}"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for the absolute paths of http(s) URLs."""
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    output: list[str] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment in (".", ".."):
            if segment == ".." and len(output) > 1:
                output.pop()
            if index == last:
                output.append("")
            continue
        output.append(segment)
    return "/".join(output)


def access_token_hash(token: str) -> str:
    """RFC 9449 ``ath``: base64url(SHA-256(ASCII access token)), no padding."""
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


# Verification.

_allowed: dict[str, frozenset[str]] = {}


@conf.on_reload
def _clear_allowed_algorithms() -> None:
    _allowed.clear()
    _check_header.cache_clear()


def allowed_algorithms() -> frozenset[str]:
    """DPOP_ALGORITHMS restricted to asymmetric JWS algorithms, whatever the settings say."""
    try:
        return _allowed["algs"]
    except KeyError:
        algs = frozenset(conf.as_tuple(obo_settings.DPOP_ALGORITHMS)) & jose.ASYMMETRIC_ALGORITHMS
        _allowed["algs"] = algs
        return algs


@sensitive_variables("proof", "access_token", "signature_b64", "header_b64", "payload_b64")
def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    access_token: str,
    jkt: str,
    nonce: NonceCheck = None,
    access_token_digest: bytes | None = None,
) -> str:
    """Verify a DPoP proof for this request and token (RFC 9449 §4.3); return its key's
    thumbprint. Raises InvalidDPoPProof with a short safe description (never the proof).

    ``nonce`` is the optional server-nonce hook: the expected value, or a callable judging the
    proof's ``nonce`` claim (None when absent); a failure raises UseDPoPNonce.
    ``access_token_digest`` is SHA-256 of ``access_token`` when the caller has it already (the
    token verifier computes it), so ``ath`` is checked without hashing the token again.
    """
    if type(proof) is not str or len(proof) > MAX_PROOF_LENGTH:
        raise InvalidDPoPProof("DPoP proof is not a JWT.")
    try:
        header_b64, payload_b64, signature_b64 = jose.split_compact(proof.encode("ascii"))
        signature = jose.b64url_decode(signature_b64)
    except (UnicodeEncodeError, jose.JOSEError):
        raise InvalidDPoPProof("DPoP proof is not a JWT.") from None
    if not signature:
        raise InvalidDPoPProof("DPoP proof is not a JWT.")
    if len(header_b64) > MAX_CACHED_HEADER_LENGTH:
        alg, public = _check_header.__wrapped__(header_b64)
    else:
        alg, public = _check_header(header_b64)
    claims = _decode_segment(payload_b64)
    if claims is None:
        raise InvalidDPoPProof("DPoP proof payload is not a JSON object.")

    # The claims are checked before the signature is: all of it is cheap next to the signature,
    # and only a proof that passed them costs a replay record and a signature check.
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidDPoPProof("DPoP proof jti is missing or malformed.")
    if claims.get("htm") != method:
        raise InvalidDPoPProof("DPoP proof htm does not match the request method.")
    htu = _check_htu(claims.get("htu"), url)
    _check_iat(claims.get("iat"))
    _check_ath(claims.get("ath"), access_token, access_token_digest)
    if not hmac.compare_digest(public.jkt.encode("ascii"), jkt.encode("utf-8", "replace")):
        raise InvalidDPoPProof("DPoP proof key does not match the token's cnf.jkt.")
    if nonce is not None:
        _check_nonce(claims.get("nonce"), nonce)
    # The replay record is asked for before the signature is checked and its answer read after,
    # so the round trip to a shared cache overlaps the signature check (see replay.claim_proof
    # on what a record left by a forged proof can and cannot do).
    with replay.claim_proof(public.jkt, htu, jti) as claim:
        if not jose.verify(alg, public.key, header_b64 + b"." + payload_b64, signature):
            raise InvalidDPoPProof("DPoP proof signature is invalid.")
        if not claim.result():
            raise InvalidDPoPProof("DPoP proof replayed.")
    return public.jkt


@lru_cache(maxsize=HEADER_CACHE_SIZE)
def _check_header(header_b64: bytes) -> tuple[str, jose.PublicJWK]:
    """The proof header's ``alg`` and public key, once ``typ``, ``alg``, ``crit`` and ``jwk``
    pass (raises InvalidDPoPProof, which is never cached).

    A client signs every proof with one key, so its header segment is the same bytes on every
    request: the result is a pure function of those bytes (and the settings, whose reload clears
    it), remembered so a known client costs a dict lookup instead of base64, JSON and JWK checks.
    The signature is still verified against the key on every proof.
    """
    header = _decode_segment(header_b64)
    if header is None:
        raise InvalidDPoPProof("DPoP proof header is not a JSON object.")
    if header.get("typ") != PROOF_TYPE:
        raise InvalidDPoPProof("DPoP proof typ must be dpop+jwt.")
    alg = header.get("alg")
    if type(alg) is not str or alg not in allowed_algorithms():
        raise InvalidDPoPProof("DPoP proof alg is not allowed.")
    if "crit" in header:
        raise InvalidDPoPProof("DPoP proof has unsupported critical headers.")
    if "jwk" not in header:
        raise InvalidDPoPProof("DPoP proof has no jwk.")
    try:
        return alg, jose.public_key_from_jwk(header["jwk"], alg)
    except jose.JWKError as error:
        raise InvalidDPoPProof(f"DPoP proof {error}.") from None


def _decode_segment(segment: bytes) -> dict[str, Any] | None:
    """A JSON object from a base64url segment, or None."""
    try:
        return jose.decode_object(segment)
    except jose.JOSEError:
        return None


def _check_htu(htu: Any, url: str) -> str:
    """Return the request URL, as compared (:func:`comparable_htu`), when ``htu`` names it."""
    if not isinstance(htu, str):
        raise InvalidDPoPProof("DPoP proof htu is missing.")
    try:
        expected = comparable_htu(url)
        matches = comparable_htu(htu) == expected
    except ValueError:
        matches = False
    if not matches:
        raise InvalidDPoPProof("DPoP proof htu does not match the request URL.")
    return expected


def _check_iat(iat: Any) -> None:
    if not jose.is_numeric_date(iat):
        raise InvalidDPoPProof("DPoP proof iat is missing or not a number.")
    now = time.time()
    if iat < now - obo_settings.DPOP_IAT_OFFSET:
        raise InvalidDPoPProof("DPoP proof is too old.")
    if iat > now + obo_settings.DPOP_IAT_LEEWAY:
        raise InvalidDPoPProof("DPoP proof iat is in the future.")


def _check_ath(ath: Any, access_token: str, digest: bytes | None) -> None:
    if not isinstance(ath, str):
        raise InvalidDPoPProof("DPoP proof ath is missing.")
    try:
        expected = b64url_encode(digest) if digest else access_token_hash(access_token)
    except UnicodeEncodeError:
        expected = ""
    if not expected or not hmac.compare_digest(ath.encode("utf-8", "replace"), expected.encode()):
        raise InvalidDPoPProof("DPoP proof ath does not match the access token.")


def _check_nonce(value: Any, expected: str | Callable[[str | None], bool]) -> None:
    given = value if isinstance(value, str) else None
    if callable(expected):
        valid = bool(expected(given))
    else:
        valid = given is not None and hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.encode("utf-8")
        )
    if not valid:
        raise UseDPoPNonce()


# Our own proofs (RFC 9449 §4.2), for the token exchange and downstream calls.


def make_proof(
    method: str, url: str, access_token: str | None = None, *, nonce: str | None = None
) -> str:
    """A fresh DPoP proof signed with DPOP_CLIENT_KEY (ES256) for ``method`` and ``url``.

    ``htu`` is ``url`` normalised without query and fragment; ``ath`` binds ``access_token``
    when given (the downstream call), ``nonce`` echoes a server's ``DPoP-Nonce``.
    Raises ConfigurationError when DPOP_CLIENT_KEY is missing or unusable.
    """
    key = load_client_key()
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": normalize_htu(url),
        "iat": int(time.time()),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=key.alg,
        headers={"typ": PROOF_TYPE, "jwk": key.public_jwk},
    )

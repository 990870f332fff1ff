"""The tenant's token endpoint: one POST with client authentication, DPoP and bounded retries.

Framework-free apart from the settings object. What is retried, and why:

- ``400 use_dpop_nonce`` with a ``DPoP-Nonce`` header: once, with a proof carrying that nonce
  (remembered per tenant domain for the next requests, as RFC 9449 §8 intends).
- ``429``: once, when ``Retry-After`` (or Auth0's ``x-ratelimit-reset``) asks for at most
  :data:`MAX_RETRY_AFTER` seconds; a longer wait is not ours to spend inside a request, so the
  error carries ``retry_after`` instead.
- ``5xx`` and connection failures: once, after a short backoff. A timeout is not retried (the
  tenant may still be processing it, and the caller already waited ``HTTP_TIMEOUT``).

The answer is not trusted blindly: the whole call has the ``HTTP_TIMEOUT`` deadline of
:mod:`.http`, the answer is capped at :data:`MAX_ANSWER_BYTES` and its ``access_token`` at
:data:`MAX_ACCESS_TOKEN_BYTES` of printable ASCII, and ``token_type`` must be ``Bearer`` or
``DPoP`` (both become an ``Authorization`` header); numbers are ASCII digits of bounded length,
and JSON nested too deep to parse is malformed. Anything else is ``invalid_response``.

Errors keep the tenant's ``error`` and ``error_description`` verbatim. Neither the form (it holds
the subject token) nor the client secret is ever logged or put in an exception, and :func:`post`
is a ``sensitive_variables`` frame: Django's error reports show no local of it or of anything it
calls (the assertion, the proof, ``requests``' prepared body, the parsed answer).
"""

from __future__ import annotations

import base64
import email.utils
import logging
import math
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import requests
from django.views.decorators.debug import sensitive_variables

from django_auth0_obo import client_assertion, dpop, forwarded_ip, jose
from django_auth0_obo.conf import obo_settings, on_reload
from django_auth0_obo.exceptions import ConfigurationError, TokenExchangeError
from django_auth0_obo.exchange_errors import TransportFailure
from django_auth0_obo.http import MalformedResponse, ResponseTooLarge, ascii_integer, tenant_request

logger = logging.getLogger("django_auth0_obo")

#: Longest ``Retry-After`` (seconds) waited out inside a request before retrying a 429.
MAX_RETRY_AFTER = 2.0
#: Longest believable ``expires_in`` (about 30 years); anything above is a malformed answer.
MAX_EXPIRES_IN = 10**9
#: Backoff before retrying a 5xx or a connection failure: base plus up to as much jitter.
RETRY_BACKOFF = 0.2
#: Largest token-endpoint answer read (bytes); Auth0's are a few kilobytes.
MAX_ANSWER_BYTES = 256 * 1024
#: Largest ``access_token`` accepted (bytes): far above Auth0's, and above what HTTP servers
#: accept in a request header, so a larger one could never be used downstream anyway.
MAX_ACCESS_TOKEN_BYTES = 32 * 1024
#: ``token_type`` values accepted (compared case-insensitively), in their canonical spelling.
TOKEN_TYPES = {"bearer": "Bearer", "dpop": "DPoP"}
#: Longest wait (seconds) believed from ``Retry-After`` or ``x-ratelimit-reset``.
MAX_BELIEVED_WAIT = 3600.0

#: What an ``access_token`` may hold: printable ASCII without space. It becomes part of an
#: ``Authorization`` header; CR/LF or a non-latin-1 character would fail every downstream call.
_ACCESS_TOKEN = re.compile(r"[\x21-\x7e]+")

FormValue = str | Sequence[str]

_nonces: dict[str, str] = {}
_nonce_lock = threading.Lock()


@dataclass(frozen=True)
class TokenResponse:
    """A successful answer: the JSON body and when the request that got it was sent."""

    body: dict[str, Any]
    sent_at: float

    @property
    def access_token(self) -> str:
        return str(self.body["access_token"])

    @property
    def expires_in(self) -> int:
        return int(self.body["expires_in"])


def token_endpoint_url(domain: str | None = None) -> str:
    """``https://<domain>/oauth/token`` (default: the first domain): where Auth0 serves every
    grant; with custom domains, the one that issued the subject token (see ``domains``)."""
    return f"https://{domain or obo_settings.primary_domain}/oauth/token"


def client_credentials() -> tuple[str, str]:
    """``(CLIENT_ID, CLIENT_SECRET)``, or ``ConfigurationError`` before anything is sent.

    With ``private_key_jwt`` the secret is ``""``: the client key stands in for it."""
    client_id, secret = obo_settings.CLIENT_ID, obo_settings.CLIENT_SECRET
    if obo_settings.CLIENT_AUTH_METHOD == "private_key_jwt":
        if not client_id or not obo_settings.CLIENT_ASSERTION_KEY:
            raise ConfigurationError(
                "private_key_jwt needs AUTH0_OBO CLIENT_ID and CLIENT_ASSERTION_KEY."
            )
        return client_id, ""
    if not client_id or not secret:
        raise ConfigurationError(
            "Token exchange needs AUTH0_OBO CLIENT_ID and CLIENT_SECRET (this API's Custom API "
            "client)."
        )
    return client_id, secret


def uses_dpop() -> bool:
    """True when exchanges carry this API's own DPoP proof (``DPOP_CLIENT_KEY`` is set)."""
    return bool(obo_settings.DPOP_CLIENT_KEY)


def client_jkt() -> str | None:
    """Thumbprint of ``DPOP_CLIENT_KEY`` (part of the cache key), or None without DPoP."""
    return dpop.load_client_key().jkt if uses_dpop() else None


def basic_authorization(client_id: str, secret: str) -> str:
    """``Basic …`` with id and secret form-urlencoded first, as RFC 6749 §2.3.1 requires."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


@sensitive_variables()
def post(form: Mapping[str, FormValue], domain: str | None = None) -> TokenResponse:
    """POST ``form`` (plus client authentication) to ``domain``'s token endpoint (default: the
    first domain); raise on failure."""
    client_id, secret = client_credentials()
    domain = domain or obo_settings.primary_domain
    url = token_endpoint_url(domain)
    data: dict[str, FormValue] = dict(form)
    headers = {"Accept": "application/json", **forwarded_ip.forwarding_headers()}
    method = obo_settings.CLIENT_AUTH_METHOD
    if method == "client_secret_basic":
        headers["Authorization"] = basic_authorization(client_id, secret)
    elif method == "client_secret_post":
        data["client_id"] = client_id
        data["client_secret"] = secret
    with_dpop = uses_dpop()
    nonce_retried = transient_retried = False
    while True:
        if method == "private_key_jwt":  # a fresh assertion (new jti) for every attempt
            data.update(client_assertion.assertion_form(client_id, url))
        if with_dpop:
            headers["DPoP"] = dpop.make_proof("POST", url, nonce=_nonces.get(domain))
        sent_at = time.time()
        try:
            response = tenant_request(
                "POST", url, data=data, headers=headers, max_bytes=MAX_ANSWER_BYTES
            )
        except requests.Timeout as exc:
            raise TransportFailure(
                "timeout", "The token endpoint did not answer in time.", 504
            ) from exc
        except ResponseTooLarge as exc:
            raise TransportFailure(
                "invalid_response", "The token endpoint's answer is too large.", 502
            ) from exc
        except MalformedResponse as exc:
            raise TransportFailure(
                "invalid_response", "The token endpoint's answer is malformed.", 502
            ) from exc
        except requests.RequestException as exc:
            if not transient_retried:
                transient_retried = True
                logger.info("Token endpoint unreachable (%s); retrying once.", type(exc).__name__)
                _sleep(_backoff())
                continue
            raise TransportFailure(
                "connection_error",
                f"Cannot reach the token endpoint ({type(exc).__name__}).",
                502,
            ) from exc

        nonce = _remember_nonce(domain, response)
        status = response.status_code
        if 200 <= status < 300:
            return TokenResponse(_parse_success(response), sent_at)
        error, description = _parse_error(response)
        if (
            status == 400
            and error == "use_dpop_nonce"
            and with_dpop
            and nonce
            and not nonce_retried
        ):
            nonce_retried = True
            logger.info("Token endpoint asked for a DPoP nonce; retrying once with it.")
            continue
        if status == 429:
            wait = retry_after(response)
            if wait is not None and wait <= MAX_RETRY_AFTER and not transient_retried:
                transient_retried = True
                logger.info("Token endpoint rate-limited us; retrying in %.2f s.", wait)
                _sleep(wait)
                continue
            raise TokenExchangeError(
                error or "too_many_requests", description, 429, retry_after=wait
            )
        if status >= 500:
            if not transient_retried:
                transient_retried = True
                logger.info("Token endpoint answered HTTP %s; retrying once.", status)
                _sleep(_backoff())
                continue
            raise TokenExchangeError(
                error or "server_error", description, status, retry_after=retry_after(response)
            )
        if error is None:  # no OAuth error body: an answer we cannot read, not a refusal
            raise TransportFailure("invalid_response", description, status)
        raise TokenExchangeError(error, description, status)


def retry_after(response: requests.Response) -> float | None:
    """Seconds to wait: ``Retry-After`` (delta-seconds or HTTP-date), else Auth0's
    ``x-ratelimit-reset`` (epoch seconds); None when neither is usable. Never negative, never
    above :data:`MAX_BELIEVED_WAIT`."""
    wait = _retry_after_header(response.headers.get("Retry-After") or "")
    if wait is None:
        wait = _ratelimit_reset(response.headers.get("x-ratelimit-reset") or "")
    return None if wait is None else min(max(0.0, wait), MAX_BELIEVED_WAIT)


def _retry_after_header(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # never None on Python 3.10+
        return None
    return when.timestamp() - time.time()


def _ratelimit_reset(value: str) -> float | None:
    reset = ascii_integer(value.strip(), 12)
    return None if reset is None else reset - time.time()


def _json(response: requests.Response) -> Any:
    """The answer's JSON, or None when it is not strict JSON (or nested too deep to parse)."""
    try:
        return jose.loads(response.content)
    except jose.JOSEError:
        return None


def _parse_success(response: requests.Response) -> dict[str, Any]:
    body = _json(response)
    if not isinstance(body, dict):
        raise TransportFailure(
            "invalid_response", "The token endpoint answered with malformed JSON.", 502
        )
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise TransportFailure(
            "invalid_response", "The token endpoint's answer has no access_token.", 502
        )
    if len(token.encode("utf-8")) > MAX_ACCESS_TOKEN_BYTES:
        raise TransportFailure(
            "invalid_response", "The token endpoint's access_token is too large.", 502
        )
    if not _ACCESS_TOKEN.fullmatch(token):
        raise TransportFailure(
            "invalid_response", "The token endpoint's access_token is not header-safe.", 502
        )
    token_type = body.get("token_type")
    canonical = TOKEN_TYPES.get(token_type.lower()) if isinstance(token_type, str) else None
    if canonical is None:
        raise TransportFailure(
            "invalid_response", "The token endpoint's token_type is not Bearer or DPoP.", 502
        )
    body["token_type"] = canonical
    expires_in = body.get("expires_in")
    if isinstance(expires_in, str):
        expires_in = ascii_integer(expires_in.strip(), len(str(MAX_EXPIRES_IN)))
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or not 0 <= expires_in <= MAX_EXPIRES_IN
    ):
        raise TransportFailure(
            "invalid_response", "The token endpoint's answer has no valid expires_in.", 502
        )
    body["expires_in"] = int(expires_in)
    return body


#: RFC 6749 §5.2: an ``error`` code is printable ASCII without ``"`` or ``\\``; ours are short.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}")
#: The most of the tenant's ``error_description`` passed on to callers and logs.
MAX_DESCRIPTION_CHARS = 512


def _parse_error(response: requests.Response) -> tuple[str | None, str]:
    """``(error, error_description)`` as the tenant sent them, when they are well formed.

    The tenant's words reach our callers' answers and our logs, so they are bounded here: an
    ``error`` outside RFC 6749's character set or length counts as no code at all, and the
    description keeps only printable characters, cut at :data:`MAX_DESCRIPTION_CHARS`.
    """
    body = _json(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str) and _ERROR_CODE.fullmatch(error):
            description = body.get("error_description")
            return error, _printable(description) if isinstance(description, str) else ""
    return None, f"The token endpoint answered HTTP {response.status_code}."


def _printable(text: str) -> str:
    kept = "".join(c for c in text[: MAX_DESCRIPTION_CHARS * 2] if c.isprintable())
    return kept if len(kept) <= MAX_DESCRIPTION_CHARS else kept[: MAX_DESCRIPTION_CHARS - 1] + "…"


def _remember_nonce(domain: str, response: requests.Response) -> str | None:
    nonce = response.headers.get("DPoP-Nonce")
    if nonce:
        with _nonce_lock:
            _nonces[domain] = nonce
    return nonce


def remembered_nonce(domain: str) -> str | None:
    """The last ``DPoP-Nonce`` the tenant at ``domain`` gave us."""
    return _nonces.get(domain)


def _backoff() -> float:
    return RETRY_BACKOFF + random.uniform(0, RETRY_BACKOFF)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@on_reload
def forget_nonces() -> None:
    """Drop remembered DPoP nonces (settings changed: maybe another tenant)."""
    with _nonce_lock:
        _nonces.clear()

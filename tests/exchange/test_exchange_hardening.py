"""The tenant's answers are not trusted blindly: total deadlines, size caps, ``token_type``, and
no exchange of a token bound to something the app cannot check.

Against the stand-in over real HTTPS; its faults make it slow, huge or wrong on purpose.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from django_auth0_obo import keys, token_endpoint
from django_auth0_obo.exceptions import TenantUnavailable, TokenExchangeError
from django_auth0_obo.exchange import (
    TOKEN_TYPE_ACCESS_TOKEN,
    get_access_token_for_connection,
    get_token_by_exchange_profile,
    get_token_on_behalf_of,
)
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.testing import LocalTenant
from django_auth0_obo.testing.server import Serving
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(token_endpoint, "RETRY_BACKOFF", 0.01)
    keys.clear_cache()
    yield configure(auth0_tenant, settings)
    keys.clear_cache()


def exchange_error(subject: str) -> TokenExchangeError:
    with pytest.raises(TokenExchangeError) as failure:
        get_token_on_behalf_of(subject, DOWNSTREAM)
    return failure.value


# -- HTTP_TIMEOUT bounds the whole call ---------------------------------------------------------

#: A tenant sending one byte every 0.1 s never trips a 1 s per-read timeout; without a total
#: deadline these small answers would take 15 s or more to arrive.
TRICKLE = 0.1


def test_a_trickling_token_endpoint_is_a_timeout_not_a_stuck_worker(
    tenant: LocalTenant, settings: Any
) -> None:
    configure(tenant, settings, HTTP_TIMEOUT=1)
    subject = user_token(tenant)
    tenant.inject_fault(
        "token", status=400, body={"error": "invalid_grant"}, trickle=TRICKLE, times=None
    )

    error = exchange_error(subject)

    assert (error.error, error.status_code) == ("timeout", 504)
    assert tenant.count("token") == 1  # a timeout is not retried


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [("discovery", {"issuer": "x"}), ("jwks", {"keys": []})],
)
def test_trickling_discovery_or_jwks_is_a_timeout(
    tenant: LocalTenant,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
    body: dict[str, Any],
) -> None:
    configure(tenant, settings, HTTP_TIMEOUT=1)
    tenant.inject_fault(endpoint, status=200, body=body, trickle=TRICKLE, times=None)

    with (
        caplog.at_level(logging.WARNING, logger="django_auth0_obo"),
        pytest.raises(TenantUnavailable),
    ):
        keys.get_keyset(tenant.issuer)

    assert "DeadlineExceeded" in caplog.text


def test_a_slow_but_steady_answer_within_the_deadline_is_read_whole(
    tenant: LocalTenant,
) -> None:
    tenant.inject_fault("jwks", status=None, trickle=0.0005)

    keyset = keys.get_keyset(tenant.issuer)

    assert keyset
    assert tenant.count("jwks") == 1


# -- size caps ----------------------------------------------------------------------------------


def success(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"access_token": "a.b.c", "expires_in": 3600, "token_type": "Bearer"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("why", "body"),
    [
        ("a 300 KB answer", success(padding="x" * 300_000)),
        ("a 40 KB access_token", success(access_token="a" * 40_000)),
        ("a 32 KB + 1 access_token", success(access_token="a" * (32 * 1024 + 1))),
    ],
)
def test_oversized_answers_are_invalid_response_and_not_cached(
    tenant: LocalTenant, why: str, body: dict[str, Any]
) -> None:
    tenant.inject_fault("token", status=200, body=body)

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 502), why
    assert not ExchangedToken.objects.exists()


# -- numbers, nesting and framing Python refuses to parse -------------------------------------


@pytest.mark.parametrize(
    ("why", "body"),
    [
        (
            "a superscript expires_in: str.isdigit() takes it, int() not",
            success(expires_in="\u00b2"),
        ),
        ("a 5000-digit expires_in: past int()'s 4300-digit limit", success(expires_in="9" * 5000)),
        (
            "an Arabic-Indic expires_in: int() reads it, OAuth does not",
            success(expires_in="\u0663"),
        ),
        ("JSON nested too deep to parse, well under the size cap", "[" * 100_000),
    ],
)
def test_answers_python_cannot_parse_are_invalid_response_not_a_crash(
    tenant: LocalTenant, why: str, body: Any
) -> None:
    tenant.inject_fault("token", status=200, body=body)

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 502), why
    assert not ExchangedToken.objects.exists()


def test_an_expires_in_of_ascii_digits_in_a_string_is_still_accepted(tenant: LocalTenant) -> None:
    tenant.inject_fault("token", status=200, body=success(expires_in=" 3600 "))

    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)

    assert 3590 <= result["expires_in"] <= 3600


class _DeclaredLength(BaseHTTPRequestHandler):
    """Answers ``{}`` declaring ``Content-Length: <declared>``, alone: the stand-in's own handler
    always adds the true length, so it cannot send this framing."""

    protocol_version = "HTTP/1.1"
    declared = b""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.close_connection = True
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + self.declared + b"\r\n\r\n{}"
        )

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""


@contextlib.contextmanager
def tenant_declaring(tenant: LocalTenant, settings: Any, declared: bytes) -> Iterator[str]:
    """AUTH0_OBO pointed at a domain (real HTTPS, the stand-in's plumbing) whose every answer
    declares ``declared`` as its length; yields its issuer."""
    handler = type("Handler", (_DeclaredLength,), {"declared": declared})
    serving = Serving.start(tenant.state, ("127.0.0.1", 0), name="bad-length", handler=handler)
    try:
        domain = f"127.0.0.1:{serving.port}"
        configure(tenant, settings, DOMAIN=domain, TLS_CA_BUNDLE=str(serving.tls.ca_cert))
        yield f"https://{domain}/"
    finally:
        serving.stop()


BAD_LENGTHS = [
    pytest.param(b"\xb2", id="a superscript digit: str.isdigit() takes it, int() not"),
    pytest.param(b"9" * 5000, id="5000 digits: past int()'s 4300-digit limit"),
    pytest.param(b"12abc", id="not a number (RFC 9112: discard the answer)"),
]


@pytest.mark.parametrize("declared", BAD_LENGTHS)
def test_a_bogus_content_length_is_an_invalid_response(
    tenant: LocalTenant, settings: Any, declared: bytes
) -> None:
    with tenant_declaring(tenant, settings, declared):
        error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 502)


@pytest.mark.parametrize("declared", BAD_LENGTHS)
def test_a_bogus_content_length_from_discovery_is_tenant_unavailable(
    tenant: LocalTenant, settings: Any, caplog: pytest.LogCaptureFixture, declared: bytes
) -> None:
    with (
        tenant_declaring(tenant, settings, declared) as issuer,
        caplog.at_level(logging.WARNING, logger="django_auth0_obo"),
        pytest.raises(TenantUnavailable),
    ):
        keys.get_keyset(issuer)

    assert "MalformedResponse" in caplog.text


# -- the access token itself --------------------------------------------------------------------


def test_an_access_token_at_the_cap_is_accepted(tenant: LocalTenant) -> None:
    tenant.inject_fault("token", status=200, body=success(access_token="a" * 32 * 1024))

    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)

    assert len(result["access_token"]) == 32 * 1024


@pytest.mark.parametrize(
    ("why", "access_token"),
    [
        ("CR/LF would split the downstream call's headers", "abc\r\nX-Injected: 1"),
        ("a space would end the token inside the header", "abc def"),
        ("a control character", "abc\x00"),
        ("not latin-1: no HTTP client can send it", "t\u20ac"),
        ("latin-1 but not ASCII", "t\u00e9"),
    ],
)
def test_an_access_token_unusable_in_a_header_is_invalid_response_and_not_cached(
    tenant: LocalTenant, why: str, access_token: str
) -> None:
    tenant.inject_fault("token", status=200, body=success(access_token=access_token))

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 502), why
    assert not ExchangedToken.objects.exists()


# -- token_type ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("Bearer", "Bearer"),
        ("bearer", "Bearer"),
        ("BEARER", "Bearer"),
        ("DPoP", "DPoP"),
        ("dpop", "DPoP"),
    ],
)
def test_token_type_bearer_or_dpop_is_accepted_in_its_canonical_spelling(
    tenant: LocalTenant, sent: str, returned: str
) -> None:
    tenant.inject_fault("token", status=200, body=success(token_type=sent))

    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)

    assert result["token_type"] == returned


@pytest.mark.parametrize(
    ("why", "token_type"),
    [
        ("CR/LF would reach the caller's Authorization header", "Bearer\r\nX-Injected: 1"),
        ("a trailing space", "Bearer "),
        ("another scheme", "Basic"),
        ("MAC tokens are not supported", "mac"),
        ("empty", ""),
        ("not a string", 5),
        ("a list", ["Bearer"]),
        ("missing (RFC 6749 §5.1 requires it)", None),
    ],
)
def test_any_other_token_type_is_invalid_response(
    tenant: LocalTenant, why: str, token_type: Any
) -> None:
    tenant.inject_fault("token", status=200, body=success(token_type=token_type))

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 502), why


# -- certificate-bound tokens -------------------------------------------------------------------

X5T = {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}


@pytest.mark.parametrize(
    "exchange",
    [
        lambda token: get_token_on_behalf_of(token, DOWNSTREAM),
        lambda token: get_access_token_for_connection("google-oauth2", token),
        lambda token: get_token_by_exchange_profile(token, TOKEN_TYPE_ACCESS_TOKEN, DOWNSTREAM),
    ],
    ids=["on_behalf_of", "token_vault", "custom_token_exchange"],
)
@pytest.mark.parametrize(
    "cnf", [X5T, {**X5T, "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}]
)
def test_a_raw_certificate_bound_token_is_never_exchanged(
    tenant: LocalTenant, exchange: Any, cnf: dict[str, str]
) -> None:
    token = user_token(tenant, claims={"cnf": cnf})

    with pytest.raises(ValueError, match="certificate-bound"):
        exchange(token)

    assert tenant.count("token") == 0

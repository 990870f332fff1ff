"""The tenant's answers are not trusted blindly: total deadlines, size caps, ``token_type``, and
no exchange of a token bound to something the app cannot check.

Against the stand-in over real HTTPS; its faults make it slow, huge or wrong on purpose.
"""

from __future__ import annotations

import logging
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
from django_auth0_obo.testing import LocalTenant
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
    from django_auth0_obo.models import ExchangedToken

    tenant.inject_fault("token", status=200, body=body)

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 502), why
    assert not ExchangedToken.objects.exists()


def test_an_access_token_at_the_cap_is_accepted(tenant: LocalTenant) -> None:
    tenant.inject_fault("token", status=200, body=success(access_token="a" * 32 * 1024))

    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)

    assert len(result["access_token"]) == 32 * 1024


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

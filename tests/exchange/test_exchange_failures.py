"""What the API's caller sees when an exchange fails inside a view: status and stable ``code``.

Every row runs a real exchange against the stand-in over HTTPS; the tenant misbehaves through its
fault injection or its real refusals. The table is the one in README.md ("When an exchange fails").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_auth0_obo import token_endpoint
from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.exchange import get_access_token_for_connection, get_token_on_behalf_of
from django_auth0_obo.exchange_errors import describe
from django_auth0_obo.testing import LocalTenant
from tests.exchange_support import DOWNSTREAM, THIS_API, configure, user_token

pytestmark = pytest.mark.django_db


def chain(depth: int) -> dict[str, Any] | None:
    """An ``act`` claim ``depth`` levels deep (None for 0)."""
    act: dict[str, Any] | None = None
    for level in range(1, depth + 1):
        act = {"sub": f"client-{level}", **({"act": act} if act else {})}
    return act


class CallsDownstream(APIView):
    """A view that lets TokenExchangeError escape, as most views will."""

    authentication_classes = []
    permission_classes = [AllowAny]
    call: Callable[[], Any] = staticmethod(lambda: None)

    def get(self, request: Any) -> Response:
        return Response(self.call())


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(token_endpoint, "RETRY_BACKOFF", 0.01)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "EXCEPTION_HANDLER": "django_auth0_obo.api_exceptions.exception_handler",
    }
    return configure(auth0_tenant, settings)


def answer(call: Callable[[], Any]) -> Response:
    return CallsDownstream.as_view(call=call)(APIRequestFactory().get("/calls-downstream"))


def on_behalf_of(
    tenant: LocalTenant, audience: str = DOWNSTREAM, scope: str | None = None, **claims: Any
) -> Callable[[], Any]:
    subject = user_token(tenant, **claims)
    return lambda: get_token_on_behalf_of(subject, audience, scope)


def fault(status: int, error: str, *, times: int = 1, **options: Any) -> dict[str, Any]:
    return {
        "status": status,
        "body": {"error": error, "error_description": "d"},
        "times": times,
        **options,
    }


# (why, how the tenant is made to fail, what the exchange asks, status, code)
REFUSALS: list[tuple[str, dict[str, Any] | None, dict[str, Any], int, str]] = [
    (
        "expired subject token: the tenant's 401 invalid_grant",
        None,
        {"iat": 1_600_000_000},
        403,
        "subject_token_rejected",
    ),
    (
        "subject already five actors deep: the tenant's 400 invalid_request",
        None,
        {"act": chain(5)},
        403,
        "delegation_depth_exceeded",
    ),
    (
        "scope the client has no grant for: 400 invalid_scope",
        None,
        {"scope_asked": "calendar:delete"},
        403,
        "scope_not_granted",
    ),
    (
        "audience the tenant does not know: 400 invalid_target",
        None,
        {"audience": "https://nowhere.example.com"},
        403,
        "audience_not_allowed",
    ),
    (
        "audience without a user-subject grant: 403 access_denied",
        None,
        {"audience": "https://billing.example.com"},
        403,
        "delegation_refused",
    ),
    ("any other 403", fault(403, "consent_required"), {}, 403, "delegation_refused"),
    (
        "a 403 with a code meant for 400s is still a refusal",
        fault(403, "invalid_request"),
        {},
        403,
        "delegation_refused",
    ),
    (
        "an unknown 400 code is a refusal",
        fault(400, "custom_policy_denied"),
        {},
        403,
        "delegation_refused",
    ),
    ("invalid_grant sent as 400", fault(400, "invalid_grant"), {}, 403, "subject_token_rejected"),
    (
        "unauthorized_client sent as 403",
        fault(403, "unauthorized_client"),
        {},
        403,
        "client_not_allowed",
    ),
    (
        "invalid_request from a chain below the limit is ours, not the caller's",
        fault(400, "invalid_request"),
        {"act": chain(4)},
        502,
        "exchange_failed",
    ),
    (
        "unsupported_grant_type: the grant is not enabled for our client",
        fault(400, "unsupported_grant_type"),
        {},
        502,
        "exchange_failed",
    ),
    ("invalid_client: our credentials", fault(401, "invalid_client"), {}, 502, "exchange_failed"),
    ("tenant errors twice", fault(500, "server_error", times=2), {}, 502, "tenant_error"),
    (
        "tenant unavailable twice, no Retry-After",
        fault(503, "temporarily_unavailable", times=2),
        {},
        502,
        "tenant_error",
    ),
    ("an answer that is not JSON", {"status": 200, "body": "garbage"}, {}, 502, "invalid_response"),
    ("an HTML 404", {"status": 404, "body": "<html>Not Found</html>"}, {}, 502, "invalid_response"),
    (
        "an error body nested too deep to parse",
        {"status": 400, "body": "[" * 100_000},
        {},
        502,
        "invalid_response",
    ),
    # The tenant's ``error`` is its own word, whatever it says: only our client's own failures
    # are timeouts, unreachable tenants or unreadable answers.
    ("a 403 saying timeout is a refusal", fault(403, "timeout"), {}, 403, "delegation_refused"),
    (
        "a 401 saying connection_error is a refusal",
        fault(401, "connection_error"),
        {},
        403,
        "delegation_refused",
    ),
    (
        "a 400 saying invalid_response is a refusal",
        fault(400, "invalid_response"),
        {},
        403,
        "delegation_refused",
    ),
    ("connection dropped twice", {"close": True, "times": 2}, {}, 502, "tenant_unreachable"),
]


@pytest.mark.parametrize(
    ("why", "injected", "ask", "status", "code"), REFUSALS, ids=[row[0] for row in REFUSALS]
)
def test_a_failed_exchange_answers_by_what_the_tenant_meant(
    tenant: LocalTenant,
    why: str,
    injected: dict[str, Any] | None,
    ask: dict[str, Any],
    status: int,
    code: str,
) -> None:
    tenant.add_api("https://billing.example.com", ["billing:read"])
    if injected is not None:
        tenant.inject_fault("token", **injected)
    ask = dict(ask)
    audience = ask.pop("audience", DOWNSTREAM)
    scope = ask.pop("scope_asked", None)

    response = answer(on_behalf_of(tenant, audience, scope, **ask))

    assert (response.status_code, response.data["code"]) == (status, code), why
    assert set(response.data) == {"error", "error_description", "code"}
    assert "Retry-After" not in response


def test_a_client_not_allowed_to_exchange_is_a_403_client_not_allowed(
    auth0_tenant: LocalTenant, settings: Any, tenant: LocalTenant
) -> None:
    tenant.add_client(
        "plain-api-client", "secret", api=THIS_API, grants={DOWNSTREAM: []}, obo_enabled=False
    )
    configure(tenant, settings, CLIENT_ID="plain-api-client", CLIENT_SECRET="secret")

    response = answer(on_behalf_of(tenant))

    assert (response.status_code, response.data["code"]) == (403, "client_not_allowed")
    assert response.data["error"] == "unauthorized_client"


def test_our_misconfiguration_is_a_generic_502_logged_at_error(
    tenant: LocalTenant, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    configure(tenant, settings, CLIENT_SECRET="wrong-secret-value")

    with caplog.at_level(logging.WARNING, logger="django_auth0_obo"):
        response = answer(on_behalf_of(tenant))

    assert response.status_code == 502
    assert response.data == {
        "error": "server_error",
        "error_description": "The authorization server could not complete the token exchange.",
        "code": "exchange_failed",
    }
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "invalid_client" in errors[0].getMessage()
    assert "wrong-secret-value" not in caplog.text


def test_refusals_are_logged_as_warnings_only(
    tenant: LocalTenant, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="django_auth0_obo"):
        answer(on_behalf_of(tenant, iat=1_600_000_000))

    assert {r.levelno for r in caplog.records} == {logging.WARNING}
    assert "subject_token_rejected" in caplog.text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("federated_connection_refresh_token_not_found", 401),
        ("tokenset_not_found", 401),
        ("connected_account_not_found", 404),
    ],
)
def test_an_unlinked_token_vault_connection_is_connection_required(
    tenant: LocalTenant, error: str, status: int
) -> None:
    subject = user_token(tenant)
    tenant.inject_fault("token", **fault(status, error))

    response = answer(lambda: get_access_token_for_connection("google-oauth2", subject))

    assert response.status_code == 403
    assert response.data["code"] == "connection_required"
    assert response.data["connection"] == "google-oauth2"


def test_the_stand_ins_unlinked_user_is_connection_required(tenant: LocalTenant) -> None:
    tenant.add_connection("github", ["repo"], users=["auth0|someone-else"])
    subject = user_token(tenant)

    response = answer(lambda: get_access_token_for_connection("github", subject))

    assert response.status_code == 403
    assert response.data["code"] == "connection_required"
    assert response.data["connection"] == "github"
    assert response.data["error"] == "federated_connection_refresh_token_not_found"


def test_a_not_found_error_outside_token_vault_is_not_connection_required(
    tenant: LocalTenant,
) -> None:
    tenant.inject_fault("token", **fault(401, "tokenset_not_found"))

    response = answer(on_behalf_of(tenant))

    assert (response.status_code, response.data["code"]) == (403, "delegation_refused")


# -- the tenant slow or rate-limiting: 503 with Retry-After, 504 -------------------------------


def reset_in(seconds: int) -> str:
    return str(int(time.time()) + seconds)


@pytest.mark.parametrize(
    ("why", "headers", "lowest", "highest"),
    [
        ("Retry-After in seconds", {"Retry-After": "30"}, 30, 30),
        ("Retry-After rounded up", {"Retry-After": "7.2"}, 8, 8),
        # A range: counted from when the answer is read, so the exchange's own time comes off.
        ("Auth0's x-ratelimit-reset, epoch seconds", {"x-ratelimit-reset": "RESET+40"}, 39, 40),
        (
            "Retry-After wins over x-ratelimit-reset",
            {"Retry-After": "12", "x-ratelimit-reset": "RESET+40"},
            12,
            12,
        ),
        ("neither: retry in a second", {}, 1, 1),
        ("a reset in the past: retry in a second", {"x-ratelimit-reset": "RESET-100"}, 1, 1),
        (
            "an absurd reset is capped at an hour",
            {"x-ratelimit-reset": "RESET+9999999"},
            3600,
            3600,
        ),
        # http.client reads header bytes as latin-1: b"\xb2" arrives as "²", which isdigit().
        ("a reset int() cannot read is ignored", {"x-ratelimit-reset": "\u00b2"}, 1, 1),
    ],
)
def test_a_rate_limited_exchange_is_a_503_with_retry_after(
    tenant: LocalTenant, why: str, headers: dict[str, str], lowest: int, highest: int
) -> None:
    started = time.time()
    headers = {
        name: reset_in(int(value[5:])) if value.startswith("RESET") else value
        for name, value in headers.items()
    }
    body = {"error": "too_many_requests", "error_description": "Slow down."}
    tenant.inject_fault("token", status=429, body=body, headers=headers, times=2)

    response = answer(on_behalf_of(tenant))

    # A reset ``int(started) + N`` read at ``started + took`` leaves at least ``N - 1 - took``
    # seconds: each whole second the exchange took lowers a range row's floor by one.
    took = math.floor(time.time() - started) if lowest < highest else 0
    assert response.status_code == 503, why
    assert response.data["code"] == "rate_limited"
    assert lowest - took <= int(response["Retry-After"]) <= highest, why


def test_a_short_x_ratelimit_reset_is_waited_out_once(tenant: LocalTenant) -> None:
    tenant.inject_fault("token", status=429, headers={"x-ratelimit-reset": reset_in(0)})

    assert get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)["access_token"]
    assert tenant.count("token") == 2


def test_an_unavailable_tenant_that_says_when_is_a_503(tenant: LocalTenant) -> None:
    tenant.inject_fault(
        "token", **fault(503, "temporarily_unavailable", times=2, headers={"Retry-After": "60"})
    )

    response = answer(on_behalf_of(tenant))

    assert (response.status_code, response.data["code"]) == (503, "tenant_error")
    assert response["Retry-After"] == "60"


def test_an_unavailable_tenant_whose_reset_int_cannot_read_is_a_502(tenant: LocalTenant) -> None:
    tenant.inject_fault(
        "token",
        **fault(503, "temporarily_unavailable", times=2, headers={"x-ratelimit-reset": "\u00b2"}),
    )

    response = answer(on_behalf_of(tenant))

    assert (response.status_code, response.data["code"]) == (502, "tenant_error")


def test_a_tenant_that_does_not_answer_in_time_is_a_504(tenant: LocalTenant, settings: Any) -> None:
    configure(tenant, settings, HTTP_TIMEOUT=0.3)
    tenant.inject_fault("token", status=None, delay=2)

    response = answer(on_behalf_of(tenant))

    assert (response.status_code, response.data["code"]) == (504, "tenant_timeout")


@given(
    status=st.integers(100, 599),
    error=st.sampled_from(
        [
            "invalid_client",
            "invalid_request",
            "invalid_grant",
            "tokenset_not_found",
            "timeout",
            "connection_error",
            "invalid_response",
            "server_error",
            "x",
        ]
    )
    | st.text(max_size=20),
    connection=st.none() | st.text(min_size=1, max_size=10),
    depth=st.none() | st.integers(0, 10),
    wait=st.none() | st.floats(allow_nan=True, allow_infinity=True),
)
def test_every_failure_gets_a_caller_facing_answer(
    status: int, error: str, connection: str | None, depth: int | None, wait: float | None
) -> None:
    exc = TokenExchangeError(error, "tenant words", status, retry_after=wait)
    exc.add_context(grant="g", connection=connection, delegation_depth=depth)

    failure = describe(exc)

    assert failure.status in (403, 502, 503, 504)
    assert failure.code
    assert (failure.status == 503) == (failure.retry_after is not None)
    if failure.retry_after is not None:
        assert failure.retry_after >= 1
    if error == "invalid_client" and status != 429:
        assert failure.status == 502
        assert "tenant words" not in str(failure.body())
        assert "invalid_client" not in str(failure.body())
    if failure.code == "connection_required":
        assert failure.body()["connection"] == connection


def test_describe_never_fails_on_a_bare_error() -> None:
    failure = describe(TokenExchangeError("whatever", None, 418))

    assert (failure.status, failure.code) == (502, "tenant_error")

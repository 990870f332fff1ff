"""``Auth0Authentication`` through DRF: what a view sees, challenges, warm path, tenant outages."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.views.debug import SafeExceptionReporterFilter
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from django_auth0_obo import keys, signals, tokens
from django_auth0_obo.authentication import Auth0Authentication
from django_auth0_obo.exceptions import TenantUnavailable
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.user import Auth0User
from django_auth0_obo.verified import VerifiedToken
from tests.bearer_support import challenge_description, challenge_error
from tests.bearer_urls import API, CALENDAR_API, MCP_API

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.bearer_urls")]


@pytest.fixture
def tenant(auth0_tenant: LocalTenant) -> Iterator[LocalTenant]:
    keys.clear_cache()
    tokens.clear_memo()
    auth0_tenant.reset_counts()
    yield auth0_tenant
    keys.clear_cache()


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def drf_request(**headers: str) -> Request:
    return Request(APIRequestFactory().get("/claims", **headers))


def resolve_known_user(claims: dict[str, Any]) -> Any:
    """A USER_RESOLVER mapping ``sub`` to a Django user, None for strangers."""
    return get_user_model().objects.filter(username=claims["sub"]).first()


# What the view sees ----------------------------------------------------------------------------


def test_a_valid_bearer_token_authenticates_the_request(
    tenant: LocalTenant, api_client: APIClient
) -> None:
    token = tenant.mint(scope="read:data", permissions=["write:data"])

    response = api_client.get("/claims", **bearer(token))

    assert response.status_code == 200
    assert response.json() == {
        "sub": "auth0|user123",
        "scheme": "Bearer",
        "aud": tenant.default_audience,  # the project's first AUDIENCE
        "scopes": ["read:data", "write:data"],
        "current_actor": None,
        "delegation_chain": [],
        "jkt": None,
    }
    assert token not in response.content.decode()


def test_the_user_and_auth_are_an_auth0_user_and_a_verified_token(tenant: LocalTenant) -> None:
    token = tenant.mint(act={"sub": "mcp-server-client"})

    user, auth = Auth0Authentication().authenticate(drf_request(**bearer(token)))

    assert isinstance(user, Auth0User)
    assert user.is_authenticated
    assert user.pk == user.username == user.sub == "auth0|user123"
    assert isinstance(auth, VerifiedToken)
    assert auth.token == token
    assert auth.scheme == "Bearer"
    assert auth.current_actor == "mcp-server-client"
    assert auth.jkt is None


def test_a_delegated_token_shows_its_chain(tenant: LocalTenant, api_client: APIClient) -> None:
    token = tenant.mint(act={"sub": "mcp-server-client", "act": {"sub": "agent-7"}})

    body = api_client.get("/claims", **bearer(token)).json()

    assert body["current_actor"] == "mcp-server-client"
    assert body["delegation_chain"] == ["mcp-server-client", "agent-7"]


def test_token_verified_is_signalled_with_the_verified_token(tenant: LocalTenant) -> None:
    received: list[Any] = []

    def receiver(sender: Any, request: Any, token: Any, **kwargs: Any) -> None:
        received.append(token)

    signals.token_verified.connect(receiver)
    try:
        Auth0Authentication().authenticate(drf_request(**bearer(tenant.mint())))
    finally:
        signals.token_verified.disconnect(receiver)

    assert len(received) == 1
    assert isinstance(received[0], VerifiedToken)


def test_a_user_resolver_maps_the_token_to_a_django_user(
    tenant: LocalTenant, settings: Any, api_client: APIClient
) -> None:
    settings.AUTH0_OBO = {
        **settings.AUTH0_OBO,
        "USER_RESOLVER": f"{__name__}.resolve_known_user",
    }
    get_user_model().objects.create_user(username="auth0|known")

    known = api_client.get("/basic-fallback", **bearer(tenant.mint(sub="auth0|known")))
    stranger = api_client.get("/basic-fallback", **bearer(tenant.mint(sub="auth0|stranger")))

    assert known.status_code == 200
    assert known.json() == {"username": "auth0|known"}
    assert stranger.status_code == 401
    assert challenge_error(stranger) == "invalid_token"


def broken_user_resolver(claims: dict[str, Any]) -> Any:
    """A USER_RESOLVER with a bug: the error report must not show the token it was called for."""
    raise RuntimeError("resolver bug")


@pytest.mark.parametrize("scheme", ["Bearer", "DPoP"])
def test_an_unexpected_error_report_hides_the_token_and_proof(
    tenant: LocalTenant, settings: Any, scheme: str
) -> None:
    """Django's error report (what a 500 mails the admins) of a bug inside authentication shows
    no frame's token or proof: ``authenticate`` hides the locals of everything it calls.

    (The report's request section is Django's: it hides ``HTTP_AUTHORIZATION`` but not
    ``HTTP_DPOP``, a proof already spent against replay.)"""
    settings.DEBUG = False
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "USER_RESOLVER": f"{__name__}.broken_user_resolver"}
    key = DPoPKey.generate("ES256")
    if scheme == "Bearer":
        token, proof = tenant.mint(scope="read:data"), None
        headers = bearer(token)
    else:
        token = tenant.mint(scope="read:data", cnf_jkt=key.jkt)
        proof = key.proof("GET", "http://testserver/claims", token)
        headers = {"HTTP_AUTHORIZATION": f"DPoP {token}", "HTTP_DPOP": proof}
    request = drf_request(**headers)
    with pytest.raises(RuntimeError) as raised:
        Auth0Authentication().authenticate(request)

    shown = ""  # every frame's locals as Django's error report would show them
    frames = 0
    for frame, _ in traceback.walk_tb(raised.tb):
        if "django_auth0_obo" not in frame.f_code.co_filename:
            continue  # this test's own frame holds the token, of course
        variables = SafeExceptionReporterFilter().get_traceback_frame_variables(
            request._request, frame
        )
        shown += repr(variables)
        frames += 1

    assert frames >= 2  # authenticate and get_user at least
    assert token not in shown
    assert token.split(".")[1] not in shown  # not even the payload
    assert proof is None or proof not in shown


# Requests that are not ours -------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, {"HTTP_AUTHORIZATION": "Token abc"}],
    ids=["no header", "Basic", "Token"],
)
def test_requests_without_our_scheme_are_left_to_other_authenticators(
    tenant: LocalTenant, headers: dict[str, str]
) -> None:
    assert Auth0Authentication().authenticate(drf_request(**headers)) is None
    assert tenant.counts == {}


def test_basic_credentials_reach_the_next_authentication_class(
    tenant: LocalTenant, api_client: APIClient
) -> None:
    get_user_model().objects.create_user(username="alice", password="s3cret-pass")
    api_client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6czNjcmV0LXBhc3M=")

    response = api_client.get("/basic-fallback")

    assert response.status_code == 200
    assert response.json() == {"username": "alice"}


@pytest.fixture
def no_scopes_published(settings: Any) -> None:
    """The project publishes no SCOPES_SUPPORTED, so challenges carry no ``scope=``."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "SCOPES_SUPPORTED": []}


def test_no_credentials_get_a_bare_challenge_for_both_schemes(
    tenant: LocalTenant, api_client: APIClient, no_scopes_published: None
) -> None:
    response = api_client.get("/claims")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api", DPoP algs="ES256"'


def test_with_dpop_disabled_the_challenge_offers_bearer_only(
    tenant: LocalTenant, settings: Any, api_client: APIClient, no_scopes_published: None
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_MODE": "disabled", "REALM": "calendar"}

    response = api_client.get("/claims")

    assert response.headers["WWW-Authenticate"] == 'Bearer realm="calendar"'


def test_a_failure_puts_error_and_description_on_the_bearer_challenge(
    tenant: LocalTenant, api_client: APIClient, no_scopes_published: None
) -> None:
    response = api_client.get("/claims", **bearer(tenant.mint(expires_in=-600)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="Token has expired.", '
        'DPoP algs="ES256"'
    )
    assert response.json() == {"detail": "Token has expired."}


# Audiences narrowed by the view --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "audience", "status"),
    [
        ("/calendar", CALENDAR_API, 200),
        ("/calendar", API, 401),
        ("/calendar", MCP_API, 401),
        ("/api-only", API, 200),
        ("/api-only", CALENDAR_API, 401),
        ("/mcp", MCP_API, 200),
        ("/mcp", API, 401),
        ("/claims", MCP_API, 200),
        ("/claims", "https://elsewhere.example.com", 401),
    ],
)
def test_a_views_audience_narrows_the_accepted_tokens(
    tenant: LocalTenant,
    settings: Any,
    api_client: APIClient,
    path: str,
    audience: str,
    status: int,
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIENCE": [API, CALENDAR_API, MCP_API]}

    response = api_client.get(path, **bearer(tenant.mint(audience=audience)))

    assert response.status_code == status


def test_a_memoized_token_is_still_refused_by_a_narrower_view(
    tenant: LocalTenant, settings: Any, api_client: APIClient
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIENCE": [API, CALENDAR_API]}
    token = tenant.mint(audience=API)

    assert api_client.get("/claims", **bearer(token)).status_code == 200
    assert api_client.get("/calendar", **bearer(token)).status_code == 401


# Warm path and outages -----------------------------------------------------------------------


def test_the_warm_path_makes_no_request_to_the_tenant(
    tenant: LocalTenant, api_client: APIClient
) -> None:
    assert api_client.get("/claims", **bearer(tenant.mint(sub="first"))).status_code == 200
    assert tenant.counts == {"discovery": 1, "jwks": 1}
    tenant.reset_counts()

    statuses = {
        api_client.get("/claims", **bearer(tenant.mint(sub=f"user-{i}"))).status_code
        for i in range(25)
    }
    repeated = tenant.mint(sub="repeat")
    statuses |= {api_client.get("/claims", **bearer(repeated)).status_code for _ in range(25)}

    assert statuses == {200}
    assert tenant.counts == {}


def test_no_keys_and_the_tenant_down_answers_503_with_a_clear_body(
    tenant: LocalTenant, api_client: APIClient, caplog: pytest.LogCaptureFixture
) -> None:
    tenant.inject_fault("discovery", status=503, times=None)
    token = tenant.mint()
    caplog.set_level(logging.DEBUG, logger="django_auth0_obo")

    response = api_client.get("/claims", **bearer(token))

    assert response.status_code == 503
    assert response.json() == {"detail": TenantUnavailable.default_description}
    assert "error=" not in response.headers.get("WWW-Authenticate", "")
    assert token not in caplog.text
    assert "Cannot verify tokens" in caplog.text


def test_cached_keys_keep_working_while_the_tenant_is_down(
    tenant: LocalTenant, api_client: APIClient
) -> None:
    assert api_client.get("/claims", **bearer(tenant.mint())).status_code == 200
    tenant.inject_fault("discovery", status=500, times=None)
    tenant.inject_fault("jwks", status=500, times=None)

    assert api_client.get("/claims", **bearer(tenant.mint(sub="later"))).status_code == 200


# DPoP through the same pipeline (the proof checks themselves are dpop.py's) --------------------


def test_a_dpop_bound_token_with_its_proof_authenticates(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: APIClient
) -> None:
    token = tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", "http://testserver/claims", access_token=token)

    response = api_client.get("/claims", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)

    assert response.status_code == 200, response.headers.get("WWW-Authenticate")
    assert response.json()["scheme"] == "DPoP"
    assert response.json()["jkt"] == dpop_key.jkt


@pytest.mark.parametrize(
    ("mode", "scheme", "status", "error"),
    [
        ("disabled", "DPoP", 400, "invalid_request"),
        ("required", "Bearer", 401, "invalid_token"),
        ("allowed", "DPoP", 200, None),
    ],
)
def test_dpop_mode_decides_which_scheme_is_accepted(
    tenant: LocalTenant,
    dpop_key: DPoPKey,
    settings: Any,
    api_client: APIClient,
    mode: str,
    scheme: str,
    status: int,
    error: str | None,
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_MODE": mode}
    token = tenant.mint(cnf_jkt=dpop_key.jkt) if scheme == "DPoP" else tenant.mint()
    headers = {"HTTP_AUTHORIZATION": f"{scheme} {token}"}
    if scheme == "DPoP":
        headers["HTTP_DPOP"] = dpop_key.proof("GET", "http://testserver/claims", access_token=token)

    response = api_client.get("/claims", **headers)

    assert response.status_code == status
    assert challenge_error(response) == error


def test_the_dpop_scheme_without_a_proof_is_a_malformed_request(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: APIClient
) -> None:
    token = tenant.mint(cnf_jkt=dpop_key.jkt)

    response = api_client.get("/claims", HTTP_AUTHORIZATION=f"DPoP {token}")

    assert response.status_code == 400
    assert challenge_error(response) == "invalid_request"
    assert challenge_description(response) == "The DPoP scheme needs a DPoP proof header."


@pytest.mark.parametrize(
    "first_import",
    ["rest_framework.views", "django_auth0_obo.authentication", "django_auth0_obo.api_exceptions"],
)
def test_the_authentication_module_imports_in_any_order_without_a_cycle(first_import):
    """DRF imports DEFAULT_AUTHENTICATION_CLASSES while importing its views, so nothing our
    authentication module imports may import ``rest_framework.views`` back at import time."""
    code = (
        "import django, importlib\n"
        "django.setup()\n"
        f"importlib.import_module({first_import!r})\n"
        "from rest_framework.views import APIView\n"
        "print(type(APIView().get_authenticators()[0]).__name__)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "Auth0Authentication"


def test_the_apps_report_filter_hides_the_dpop_header_too(
    tenant: LocalTenant, settings: Any
) -> None:
    """Django's filter shows the ``DPoP`` header's proof in an error report's request section;
    ``django_auth0_obo.debug.SafeExceptionReporterFilter`` hides it (and still Authorization)."""
    from django.views.debug import SafeExceptionReporterFilter as DjangoFilter

    from django_auth0_obo.debug import SafeExceptionReporterFilter

    settings.DEBUG = False
    key = DPoPKey.generate("ES256")
    token = tenant.mint(cnf_jkt=key.jkt)
    proof = key.proof("GET", "http://testserver/claims", token)
    request = drf_request(HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)._request

    django_meta = DjangoFilter().get_safe_request_meta(request)
    ours = SafeExceptionReporterFilter().get_safe_request_meta(request)

    assert django_meta["HTTP_DPOP"] == proof  # why the filter exists
    assert proof not in repr(ours)
    assert token not in repr(ours)
    assert ours["HTTP_DPOP"] == ours["HTTP_AUTHORIZATION"] == "********************"

"""Django's error reports of a bug inside the exchange show no secret (issue 7).

An unexpected error (not a ``TokenExchangeError``) escaping the exchange becomes a 500 whose
report (mailed to the admins, sent to Sentry...) lists every frame's local variables. Django's
``SafeExceptionReporterFilter`` hides the locals of the frames below a ``sensitive_variables``
frame; these tests read the report's variables as Django builds them and find neither the user's
subject token, nor the client secret, nor the client assertion, nor the issued token.

The fault (a ``RuntimeError`` no server can cause) is injected at the one place where all of them
are live at once: while the tenant's answer is being checked, after the form with the secret and
the subject token was sent and the issued token was parsed. Each test first checks that the
frames really hold those values (so the filter had something to hide), then that the report
shows none of them.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection
from django.test import RequestFactory
from django.views.debug import SafeExceptionReporterFilter

import django_auth0_obo
from django_auth0_obo import client_assertion, dpop, token_endpoint
from django_auth0_obo.exchange import (
    OnBehalfOf,
    aget_token_on_behalf_of,
    get_token_on_behalf_of,
)
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.testing.config import CALENDAR_API, MCP_API
from django_auth0_obo.testing.resource_server import LocalResourceServer
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = str(Path(django_auth0_obo.__file__).parent)
TESTS = str(Path(__file__).resolve().parents[1])
PKJ_CLIENT = "mcp-error-report-pkj-client"
AUTH_METHODS = ["client_secret_post", "client_secret_basic", "private_key_jwt"]


class Bug(RuntimeError):
    """The unexpected error: what a bug (ours, a library's) would raise."""


class ExplodingTokenTypes(dict[str, str]):
    """Stands in for ``token_endpoint.TOKEN_TYPES``: reading it is the bug. It is read while
    ``_parse_success`` holds the issued token and ``post`` the form it sent."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise Bug("unexpected")


class Secrets:
    """What must never appear in a report, learnt by spying on the way (never raising)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        self.values[name] = value


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Secrets:
    """Records the issued token and client assertions as they pass (the spies call the real
    functions and return their results unchanged)."""
    found = Secrets()
    real_request = token_endpoint.tenant_request
    real_assertion = client_assertion.make_assertion

    def tenant_request(*args: Any, **kwargs: Any) -> requests.Response:
        response = real_request(*args, **kwargs)
        issued = response.json().get("access_token")
        if isinstance(issued, str):
            found.add("issued token", issued)
        return response

    def make_assertion(client_id: str, endpoint: str) -> str:
        assertion = real_assertion(client_id, endpoint)
        found.add("client assertion", assertion)
        return assertion

    monkeypatch.setattr(token_endpoint, "tenant_request", tenant_request)
    monkeypatch.setattr(client_assertion, "make_assertion", make_assertion)
    return found


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> Iterator[LocalTenant]:
    settings.DEBUG = False  # the filter is active in production only
    configure(auth0_tenant, settings, AUDIT="off")
    yield auth0_tenant
    connection.close()


@pytest.fixture(params=AUTH_METHODS)
def client_auth(request: pytest.FixtureRequest, tenant: LocalTenant, settings: Any) -> str:
    """This API's client authenticating with each method; the secret (or nothing) to hide."""
    method: str = request.param
    if method == "private_key_jwt":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tenant.add_client(
            PKJ_CLIENT,
            api=MCP_API,
            grants={CALENDAR_API: ("calendar:read", "calendar:write")},
            auth_method="private_key_jwt",
            public_key=key.public_key(),
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        obo = {k: v for k, v in settings.AUTH0_OBO.items() if k != "CLIENT_SECRET"}
        settings.AUTH0_OBO = {
            **obo,
            "CLIENT_ID": PKJ_CLIENT,
            "CLIENT_AUTH_METHOD": method,
            "CLIENT_ASSERTION_KEY": pem,
        }
    else:
        settings.AUTH0_OBO = {**settings.AUTH0_OBO, "CLIENT_AUTH_METHOD": method}
    return method


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_endpoint, "TOKEN_TYPES", ExplodingTokenTypes())


def hidden_values(
    tenant: LocalTenant, subject: str, secrets: Secrets, method: str
) -> dict[str, str]:
    values = {"subject token": subject, **secrets.values}
    if method != "private_key_jwt":
        values["client secret"] = tenant.client_secret
    if method == "client_secret_basic":
        values["Basic credentials"] = token_endpoint.basic_authorization(
            token_endpoint.client_credentials()[0], tenant.client_secret
        )
    return values


def frames_of(tb: TracebackType | None) -> list[Any]:
    """The frames an error report lists, but this test's own (they hold the token, of course)."""
    return [
        frame
        for frame, _ in traceback.walk_tb(tb)
        if not frame.f_code.co_filename.startswith(TESTS)
    ]


def report(tb: TracebackType | None) -> tuple[str, str, int]:
    """``(what the frames hold, what the report shows of them, app frames)`` over every frame
    of the traceback, as Django's error report renders each frame's variables."""
    request = RequestFactory().get("/tool")
    held = shown = ""
    app_frames = 0
    for frame in frames_of(tb):
        held += repr(frame.f_locals)
        variables = SafeExceptionReporterFilter().get_traceback_frame_variables(request, frame)
        shown += repr(list(variables))
        app_frames += frame.f_code.co_filename.startswith(PACKAGE)
    return held, shown, app_frames


def assert_hidden(tb: TracebackType | None, values: dict[str, str], *, app_frames: int) -> None:
    held, shown, counted = report(tb)
    assert counted >= app_frames
    assert {name for name, value in values.items() if value not in held} == set(), (
        "the fault is not where these values are live, so the test would prove nothing"
    )
    assert {name for name, value in values.items() if value in shown} == set()
    for name in ("subject token", "issued token"):
        if name in values:
            assert values[name].split(".")[1] not in shown  # not even the payload


def test_a_bug_inside_the_exchange_shows_no_secret_in_the_error_report(
    tenant: LocalTenant, client_auth: str, secrets: Secrets, bug: None
) -> None:
    subject = user_token(tenant)

    with pytest.raises(Bug) as raised:
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    values = hidden_values(tenant, subject, secrets, client_auth)
    assert {"issued token"} <= set(values)
    assert ("client assertion" in values) == (client_auth == "private_key_jwt")
    # get_token_on_behalf_of, _run, the cache, _fetch, post, _parse_success at least
    assert_hidden(raised.tb, values, app_frames=6)


def test_a_bug_inside_the_async_exchange_shows_no_secret_in_the_error_report(
    tenant: LocalTenant, client_auth: str, secrets: Secrets, bug: None
) -> None:
    """The coroutines (registered with Django by file and line), the worker thread's frames and
    asgiref's in between: none shows a secret."""
    subject = user_token(tenant)

    with pytest.raises(Bug) as raised:
        asyncio.run(aget_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read"))

    values = hidden_values(tenant, subject, secrets, client_auth)
    assert {"issued token"} <= set(values)
    names = {frame.f_code.co_name for frame in frames_of(raised.tb)}
    assert {"aget_token_on_behalf_of", "run_in_worker", "call", "_parse_success"} <= names
    assert_hidden(raised.tb, values, app_frames=8)


@pytest.fixture
def api(auth0_tenant: LocalTenant) -> Iterator[LocalResourceServer]:
    with LocalResourceServer(auth0_tenant, DOWNSTREAM) as server:
        yield server


def call_downstream(api: LocalResourceServer, subject: str) -> None:
    """The user's call to the downstream API, on their behalf (``requests`` + ``OnBehalfOf``)."""
    requests.get(
        api.url("/events"), auth=OnBehalfOf(subject, DOWNSTREAM), verify=api.ca_bundle, timeout=10
    )


def test_a_bug_inside_an_on_behalf_of_call_shows_no_secret_in_the_error_report(
    tenant: LocalTenant, client_auth: str, secrets: Secrets, bug: None, api: LocalResourceServer
) -> None:
    """``requests.get(url, auth=OnBehalfOf(...))``: the exchange runs inside requests' own
    frames (which the report lists too)."""
    subject = user_token(tenant)

    with pytest.raises(Bug) as raised:
        call_downstream(api, subject)

    values = hidden_values(tenant, subject, secrets, client_auth)
    assert_hidden(raised.tb, values, app_frames=7)
    assert api.requests == []  # nothing was sent downstream


def test_a_bug_while_signing_the_downstream_proof_shows_no_token_in_the_error_report(
    tenant: LocalTenant,
    settings: Any,
    secrets: Secrets,
    api: LocalResourceServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the exchange: the issued DPoP-bound token is being bound into the proof (``ath``)
    for the downstream call when the bug strikes."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_CLIENT_KEY": DPoPKey.generate().private_pem}
    api.dpop_required = True
    subject = user_token(tenant)

    def access_token_hash(access_token: str) -> str:
        raise Bug("unexpected")

    monkeypatch.setattr(dpop, "access_token_hash", access_token_hash)
    with pytest.raises(Bug) as raised:
        call_downstream(api, subject)

    values = {"issued token": secrets.values["issued token"]}
    # OnBehalfOf.__call__, DownstreamCall.headers, dpop.make_proof
    assert_hidden(raised.tb, values, app_frames=3)

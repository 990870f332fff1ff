"""Django's error reports of a bug inside ``verify``, ``averify``, ``Auth0TokenVerifier`` and
``protect`` show no token (issue 7): the entry points outside DRF are ``sensitive_variables``
frames too, like ``Auth0Authentication.authenticate``.

The fault (a ``RuntimeError`` no request can cause) is injected once the token is verified, when
the ``VerifiedToken`` is built: every frame between the entry point and there holds the raw
``Authorization`` value. Each test first checks that the frames do hold it, then that the report
shows it nowhere.
"""

from __future__ import annotations

import asyncio
import traceback
from types import TracebackType
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import RequestFactory
from django.views.debug import SafeExceptionReporterFilter

from django_auth0_obo.mcp import Auth0TokenVerifier, protect
from django_auth0_obo.testing import LocalTenant
from django_auth0_obo.verification import averify, verify
from django_auth0_obo.verified import VerifiedToken

pytestmark = pytest.mark.django_db(transaction=True)

RESOURCE = "https://api.example.com/mcp"


class Bug(RuntimeError):
    """The unexpected error."""


@pytest.fixture
def token(auth0_tenant: LocalTenant, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings.ALLOWED_HOSTS = ["api.example.com"]  # protect() checks the Host
    settings.AUTH0_OBO = auth0_tenant.django_settings(audience=[RESOURCE], RESOURCE=RESOURCE)
    token = auth0_tenant.mint(audience=RESOURCE, scope="mcp:read")
    verify(f"Bearer {token}", method="POST", url=RESOURCE)  # keys warm: averify stays inline

    def explode(*args: Any, **kwargs: Any) -> None:
        raise Bug("bug")

    monkeypatch.setattr(VerifiedToken, "from_verification", explode)
    yield token
    connection.close()


def assert_hidden(tb: TracebackType | None, token: str, entry: str) -> None:
    request = RequestFactory().get("/mcp")
    frames = [frame for frame, _ in traceback.walk_tb(tb)]
    names = [frame.f_code.co_name for frame in frames]
    assert entry in names
    frames = frames[names.index(entry) :]  # the entry point and below: the callers' are theirs
    held = "".join(repr(frame.f_locals) for frame in frames)
    shown = "".join(
        repr(list(SafeExceptionReporterFilter().get_traceback_frame_variables(request, frame)))
        for frame in frames
    )
    assert token in held  # the fault is where the token is live
    assert token not in shown
    assert token.split(".")[1] not in shown


def test_a_bug_inside_verify_shows_no_token(token: str) -> None:
    with pytest.raises(Bug) as raised:
        verify(f"Bearer {token}", method="POST", url=RESOURCE)
    assert_hidden(raised.tb, token, "_verify")


def test_a_bug_inside_averify_shows_no_token(token: str) -> None:
    with pytest.raises(Bug) as raised:
        asyncio.run(averify(f"Bearer {token}", method="POST", url=RESOURCE))
    assert_hidden(raised.tb, token, "averify")


def test_a_bug_inside_the_mcp_token_verifier_shows_no_token(token: str) -> None:
    with pytest.raises(Bug) as raised:
        asyncio.run(Auth0TokenVerifier().verify_token(token))
    assert_hidden(raised.tb, token, "verify_token")


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("the bug comes first")


def test_a_bug_inside_protect_shows_no_token(token: str) -> None:
    async def go() -> None:
        transport = httpx.ASGITransport(app=protect(_app))
        async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
            await c.post("/mcp", headers={"Authorization": f"Bearer {token}"})

    with pytest.raises(Bug) as raised:
        asyncio.run(go())
    assert_hidden(raised.tb, token, "protected")


def test_a_bug_inside_tokens_verify_called_directly_shows_no_token(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public ``tokens.verify`` is a frame of its own (the pipeline calls its unwrapped
    implementation from inside its own sensitive frames)."""
    from django_auth0_obo import tokens

    tokens.clear_memo()

    def explode(claims: Any) -> None:
        raise Bug("bug")

    monkeypatch.setattr(tokens, "bound_jkt", explode)
    with pytest.raises(Bug) as raised:
        tokens.verify(token)
    assert_hidden(raised.tb, token, "sensitive_variables_wrapper")


def test_a_bug_inside_verify_credentials_called_directly_shows_no_token(token: str) -> None:
    from django_auth0_obo import verification

    with pytest.raises(Bug) as raised:
        verification.verify_credentials("Bearer", token, proof=None, method="GET", url=RESOURCE)
    assert_hidden(raised.tb, token, "sensitive_variables_wrapper")

"""``Auth0TokenVerifier`` on the SDK-native path: the audit row says what the SDK decides.

The SDK refuses a token lacking a required scope (403 ``insufficient_scope``) only after the
verifier has accepted it, so a verifier told the required scopes records that refusal as
``denied``, and one not told them records nothing rather than a premature ``allowed``. Over the
official SDK's own streamable-HTTP app, with its lifespan running, in process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from django.db import connection
from mcp.server.mcpserver import MCPServer

from django_auth0_obo import audit
from django_auth0_obo.mcp import Auth0TokenVerifier, auth_settings
from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.testing import LocalTenant
from tests.mcp_support import INITIALIZE

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "api.example.com"
RESOURCE = f"https://{HOST}/mcp"
SCOPES = ["mcp:read"]


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> Any:
    settings.AUTH0_OBO = auth0_tenant.django_settings(
        audience=[RESOURCE], RESOURCE=RESOURCE, SCOPES_SUPPORTED=SCOPES, AUDIT="delegated"
    )
    yield auth0_tenant
    connection.close()


def post_initialize(verifier: Auth0TokenVerifier, token: str) -> int:
    """The status the SDK answers an ``initialize`` with, ``required_scopes`` = SCOPES."""
    server = MCPServer("t", token_verifier=verifier, auth=auth_settings(required_scopes=SCOPES))
    app = server.streamable_http_app(streamable_http_path="/mcp", json_response=True, host=HOST)

    async def go() -> int:
        transport = httpx.ASGITransport(app=app)
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
        }
        async with (
            app.router.lifespan_context(app),  # the SDK's session manager
            httpx.AsyncClient(transport=transport, base_url=f"https://{HOST}") as client,
        ):
            response = await client.post("/mcp", json=INITIALIZE, headers=headers)
        return response.status_code

    return asyncio.run(go())


def audit_rows() -> list[tuple[str, str]]:
    audit.flush()
    return list(DelegationEvent.objects.values_list("outcome", "reason"))


@pytest.mark.parametrize(
    ("why", "scope", "act", "status", "rows"),
    [
        ("delegated, scope granted", "mcp:read", True, 200, [("allowed", "")]),
        ("delegated, scope missing", "other", True, 403, [("denied", "insufficient_scope")]),
        ("direct, scope missing", "other", False, 403, [("denied", "insufficient_scope")]),
        ("direct, scope granted: not audited under 'delegated'", "mcp:read", False, 200, []),
    ],
)
def test_a_verifier_told_the_required_scopes_audits_the_sdks_decision(
    tenant: LocalTenant,
    why: str,
    scope: str,
    act: bool,
    status: int,
    rows: list[tuple[str, str]],
) -> None:
    extra: dict[str, Any] = {"act": {"sub": "agent"}, "azp": "agent"} if act else {}
    token = tenant.mint(audience=RESOURCE, scope=scope, **extra)
    assert post_initialize(Auth0TokenVerifier(required_scopes=SCOPES), token) == status, why
    assert audit_rows() == rows, why


def test_a_verifier_not_told_the_required_scopes_writes_no_premature_allowed(
    tenant: LocalTenant, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": "all"}
    token = tenant.mint(audience=RESOURCE, scope="other", act={"sub": "agent"}, azp="agent")
    assert post_initialize(Auth0TokenVerifier(), token) == 403
    assert audit_rows() == []


def test_a_verifier_not_told_the_required_scopes_says_so_once(
    tenant: LocalTenant, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = Auth0TokenVerifier()
    token = tenant.mint(audience=RESOURCE, scope="mcp:read")
    with caplog.at_level(logging.WARNING, logger="django_auth0_obo"):
        for _ in range(3):
            assert asyncio.run(verifier.verify_token(token)) is not None

    warnings = [r.getMessage() for r in caplog.records if "required_scopes" in r.getMessage()]
    assert len(warnings) == 1
    assert token not in warnings[0]


def test_no_required_scopes_means_every_verified_token_is_allowed(
    tenant: LocalTenant, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": "all"}
    token = tenant.mint(audience=RESOURCE, scope="other")
    verifier = Auth0TokenVerifier(required_scopes=())
    assert asyncio.run(verifier.verify_token(token)) is not None
    assert audit_rows() == [("allowed", "")]

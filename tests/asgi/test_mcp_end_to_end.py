"""The official MCP Python SDK, client and server, end to end against the stand-in tenant.

The client's own OAuth provider runs the whole flow with no human — 401, protected resource
discovery, authorization server metadata, dynamic registration, ``/authorize`` with PKCE, the
code grant — then calls a tool on an MCP server (official SDK, streamable HTTP, under uvicorn)
that exchanges the user's token on their behalf and reads the calendar API behind
``AllowedActors``. Both server paths: ``Auth0TokenVerifier`` (SDK-native) and ``protect``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from django.db import connection
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.testing.config import CALENDAR_API
from django_auth0_obo.testing.mcp_client import oauth_client, tls_context
from tests.mcp_support import INITIALIZE, SERVER_CLIENT, configure_mcp
from tests.uvicorn_support import bind, serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["verifier", "protect"])
def mcp_server(request: Any, auth0_tenant: LocalTenant, settings: Any) -> Iterator[str]:
    """The example project's ASGI app (Django + MCP server) under uvicorn; yields the MCP URL."""
    from testproject.mcp_server import build_application

    sock = bind()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    configure_mcp(auth0_tenant, settings, resource)
    application = build_application(protected=request.param == "protect")
    with serve(application, sock, lifespan="on"):
        yield resource
    connection.close()


async def call_tool_twice(resource: str, http: httpx2.AsyncClient) -> list[dict[str, Any]]:
    results = []
    async with http, Client(streamable_http_client(resource, http_client=http)) as client:
        for _ in range(2):
            result = await client.call_tool("upcoming_events", {})
            assert not result.is_error, result
            results.append(json.loads(result.content[0].text))
    return results


def test_the_official_client_logs_in_by_itself_and_a_tool_acts_on_the_users_behalf(
    auth0_tenant: LocalTenant, mcp_server: str
) -> None:
    http, _browser, storage = oauth_client(mcp_server, auth0_tenant.ca_bundle)
    first, second = asyncio.run(call_tool_twice(mcp_server, http))

    for answer in (first, second):
        assert answer["user"] == "auth0|user123"
        assert answer["status"] == 200
        assert answer["calendar"]["for_user"] == "auth0|user123"
        assert answer["calendar"]["acted_by"] == SERVER_CLIENT
    # The whole OAuth flow ran once, through the SDK's provider.
    assert auth0_tenant.count("register") == 1
    assert auth0_tenant.count("authorize") == 1
    (authorize,) = auth0_tenant.oauth.authorize_requests
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["resource"] == mcp_server
    assert storage.tokens is not None
    grants = [r.grant_type for r in auth0_tenant.token_requests]
    # One code grant, and ONE on-behalf-of exchange for two tool calls (the second is cached).
    assert grants.count("authorization_code") == 1
    assert grants.count("urn:ietf:params:oauth:grant-type:token-exchange") == 1
    # The calendar API audited who acted for whom.
    rows = DelegationEvent.objects.filter(current_actor=SERVER_CLIENT, outcome="allowed")
    assert rows.filter(audience=CALENDAR_API).exists()


def test_the_metadata_names_exactly_the_url_the_client_connected_to(
    auth0_tenant: LocalTenant, mcp_server: str
) -> None:
    origin = mcp_server.removesuffix("/mcp")
    response = httpx.get(f"{origin}/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    document = response.json()
    assert document["resource"] == mcp_server
    assert document["authorization_servers"][0].rstrip("/") == auth0_tenant.issuer.rstrip("/")
    unauthenticated = httpx.post(mcp_server, json={})
    assert unauthenticated.status_code == 401
    challenge = unauthenticated.headers["WWW-Authenticate"]
    assert f'resource_metadata="{origin}/.well-known/oauth-protected-resource/mcp"' in challenge


class DPoPAuth(httpx2.Auth):
    """Adds ``Authorization: DPoP`` and a fresh proof to every request (an MCP client with a
    DPoP-bound token; the official client cannot do DPoP yet)."""

    def __init__(self, token: str, key: DPoPKey) -> None:
        self.token, self.key = token, key

    def auth_flow(self, request: httpx2.Request) -> Any:
        url = str(request.url.copy_with(query=None, fragment=None))
        request.headers["Authorization"] = f"DPoP {self.token}"
        request.headers["DPoP"] = self.key.proof(request.method, url, self.token)
        yield request


def test_protect_accepts_dpop_and_the_tool_exchanges_the_bound_token(
    auth0_tenant: LocalTenant, settings: Any, dpop_key: DPoPKey
) -> None:
    from testproject.mcp_server import build_application

    sock = bind()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    configure_mcp(auth0_tenant, settings, resource)
    token = auth0_tenant.mint(audience=resource, scope="mcp:read", cnf_jkt=dpop_key.jkt)
    with serve(build_application(protected=True), sock, lifespan="on"):
        http = httpx2.AsyncClient(auth=DPoPAuth(token, dpop_key), timeout=30)
        first, _ = asyncio.run(call_tool_twice(resource, http))
        replayed = httpx.post(
            resource,
            json={},
            headers={"Authorization": f"DPoP {token}", "DPoP": dpop_key.proof("POST", resource)},
        )
        no_scope = auth0_tenant.mint(audience=resource, scope="mcp:write")
        forbidden = httpx.post(resource, json={}, headers={"Authorization": f"Bearer {no_scope}"})
        anonymous = httpx.post(resource, json={})
    connection.close()
    assert first["user"] == "auth0|user123"
    assert first["calendar"]["acted_by"] == SERVER_CLIENT
    assert replayed.status_code == 401  # a proof without ath for this token
    assert 'error="invalid_dpop_proof"' in replayed.headers["WWW-Authenticate"]
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["WWW-Authenticate"]
    assert 'scope="mcp:read"' in forbidden.headers["WWW-Authenticate"]
    assert anonymous.status_code == 401
    challenge = anonymous.headers["WWW-Authenticate"]
    assert 'scope="mcp:read"' in challenge
    assert "resource_metadata=" in challenge
    assert "error=" not in challenge
    denied = DelegationEvent.objects.filter(outcome="denied", reason="insufficient_scope")
    assert denied.filter(path="/mcp").exists()


def test_tls_context_trusts_the_stand_in(auth0_tenant: LocalTenant) -> None:
    response = httpx.get(auth0_tenant.discovery_url, verify=tls_context(auth0_tenant.ca_bundle))
    assert response.status_code == 200


MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


@pytest.mark.parametrize("protected", [False, True])
def test_a_session_belongs_to_the_user_who_opened_it(
    auth0_tenant: LocalTenant, settings: Any, protected: bool
) -> None:
    """Another user's valid token cannot use the session (the SDK binds it to its principal)."""
    from testproject.mcp_server import build_application

    sock = bind()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    configure_mcp(auth0_tenant, settings, resource)
    alice = auth0_tenant.mint(sub="auth0|alice", audience=resource, scope="mcp:read")
    mallory = auth0_tenant.mint(sub="auth0|mallory", audience=resource, scope="mcp:read")
    with serve(build_application(protected=protected), sock, lifespan="on"):
        opened = httpx.post(
            resource, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {alice}"}
        )
        session = opened.headers.get("mcp-session-id")
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        headers = {**MCP_HEADERS, "mcp-session-id": session or ""}
        own = httpx.post(
            resource, json=ping, headers={**headers, "Authorization": f"Bearer {alice}"}
        )
        other = httpx.post(
            resource, json=ping, headers={**headers, "Authorization": f"Bearer {mallory}"}
        )
    connection.close()
    assert opened.status_code == 200, opened.text
    assert session
    assert own.status_code == 200, own.text
    assert other.status_code == 404

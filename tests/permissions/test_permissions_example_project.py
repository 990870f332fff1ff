"""The example project's chain over real HTTP: a user calls the MCP endpoint, which exchanges the
token on the user's behalf and calls the calendar API, which checks the actor and the scope."""

from __future__ import annotations

import pytest
import requests

from django_auth0_obo.models import DelegationEvent

pytestmark = [pytest.mark.urls("testproject.urls"), pytest.mark.django_db(transaction=True)]

MCP_API = "https://mcp.example.com"
CALENDAR_API = "https://calendar-api.example.com"


def call(url: str, token: str, method: str = "GET") -> requests.Response:
    return requests.request(method, url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def test_the_mcp_endpoint_reads_the_calendar_on_the_users_behalf(auth0_tenant, live_server):
    user_token = auth0_tenant.mint(sub="auth0|alice", audience=MCP_API, scope="mcp:read")

    first = call(f"{live_server.url}/mcp/calendar", user_token, "POST")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["exchange"]["cache_hit"] is False
    assert body["calendar_status"] == 200
    assert body["calendar"]["for_user"] == "auth0|alice"
    assert body["calendar"]["acted_by"] == "mcp-server-client"
    assert body["calendar"]["delegation_chain"] == ["mcp-server-client"]
    assert "calendar:read" in body["calendar"]["scopes"]
    assert user_token not in first.text

    second = call(f"{live_server.url}/mcp/calendar", user_token, "POST")
    assert second.json()["exchange"]["cache_hit"] is True
    assert auth0_tenant.count("token") == 1


def test_the_calendar_api_refuses_another_actor_and_the_audit_shows_it(auth0_tenant, live_server):
    user_token = auth0_tenant.mint(sub="auth0|bob", audience=MCP_API)
    assert call(f"{live_server.url}/mcp/calendar", user_token, "POST").status_code == 200
    rogue = auth0_tenant.mint(
        sub="auth0|bob",
        audience=CALENDAR_API,
        scope="calendar:read",
        azp="rogue-agent",
        act={"sub": "rogue-agent"},
    )
    refused = call(f"{live_server.url}/api/calendar/events", rogue)
    assert refused.status_code == 403
    assert refused.json()["code"] == "actor_not_allowed"
    rows = list(
        DelegationEvent.objects.order_by("id").values_list(
            "kind", "current_actor", "outcome", "reason"
        )
    )
    assert rows == [
        ("exchange", "mcp-server-client", "allowed", ""),
        ("request", "mcp-server-client", "allowed", ""),
        ("request", "rogue-agent", "denied", "actor_not_allowed"),
    ]


def test_the_calendar_api_wants_calendar_read(auth0_tenant, live_server):
    token = auth0_tenant.mint(
        audience=CALENDAR_API,
        scope="calendar:write",
        azp="mcp-server-client",
        act={"sub": "mcp-server-client"},
    )
    response = call(f"{live_server.url}/api/calendar/events", token)
    assert response.status_code == 403
    assert 'scope="calendar:read"' in response.headers["WWW-Authenticate"]

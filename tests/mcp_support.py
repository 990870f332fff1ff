"""The MCP server's tenant registration and settings, shared by the MCP tests (not a test
module)."""

from __future__ import annotations

from typing import Any

from django_auth0_obo.testing import LocalTenant
from django_auth0_obo.testing.config import CALENDAR_API

#: The MCP server's own client at the tenant (it exchanges users' tokens).
SERVER_CLIENT = "calendar-mcp-server"
#: The JSON-RPC request that opens an MCP session.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def configure_mcp(tenant: LocalTenant, settings: Any, resource: str) -> None:
    """The MCP server's API and OBO client in the tenant, and AUTH0_OBO for this server."""
    tenant.add_api(resource, ["mcp:read", "mcp:write"])
    client = tenant.add_client(
        SERVER_CLIENT, api=resource, grants={CALENDAR_API: ["calendar:read"]}
    )
    settings.AUTH0_OBO = tenant.django_settings(
        audience=[resource],
        CLIENT_ID=SERVER_CLIENT,
        CLIENT_SECRET=client.secret,
        RESOURCE=resource,
        SCOPES_SUPPORTED=["mcp:read"],
        RESOURCE_NAME="Calendar MCP",
        AUDIT="all",
    )

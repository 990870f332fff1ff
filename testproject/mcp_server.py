"""The example MCP server: the official MCP Python SDK next to Django, in one ASGI application.

``build_application()`` returns the ASGI app uvicorn serves:

- ``/mcp`` — an MCP server (official SDK, streamable HTTP) whose tool ``upcoming_events`` does
  ``await get_verified_token().aon_behalf_of(CALENDAR_API, ...)`` and calls the calendar API;
- ``/.well-known/oauth-protected-resource/mcp`` — its RFC 9728 metadata (served by the SDK on
  the ``Auth0TokenVerifier`` path, by ``protect`` on the other);
- everything else — Django (the admin, ``/api/calendar/events`` behind ``AllowedActors``, the
  app's own metadata URLs).

``protected=False`` is the SDK-native path (``Auth0TokenVerifier``, Bearer); ``protected=True``
wraps the SDK's app, built without its auth, in ``protect`` (Bearer and DPoP, ``scope=`` in
challenges). Built on call, never at import: the resource URL comes from the settings.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.core.asgi import get_asgi_application
from mcp.server.mcpserver import MCPServer

from django_auth0_obo.conf import obo_settings
from django_auth0_obo.dpop import make_proof
from django_auth0_obo.mcp import Auth0TokenVerifier, auth_settings, get_verified_token, protect
from testproject.api.views import CALENDAR_API, CALENDAR_PATH

ASGIApp = Any
MCP_SCOPES = ["mcp:read"]


def build_mcp_server(*, native: bool) -> MCPServer:
    """The MCP server and its one tool (with the SDK's auth only on the native path)."""
    if native:
        server = MCPServer(
            "calendar",
            token_verifier=Auth0TokenVerifier(required_scopes=MCP_SCOPES),
            auth=auth_settings(required_scopes=MCP_SCOPES),
        )
    else:
        server = MCPServer("calendar")

    @server.tool()
    async def upcoming_events() -> dict[str, Any]:
        """The signed-in user's next calendar events, read on their behalf."""
        verified = get_verified_token()
        result = await verified.aon_behalf_of(CALENDAR_API, "calendar:read")
        url = calendar_url()
        token_type = result.get("token_type") or "Bearer"
        headers = {"Authorization": f"{token_type} {result['access_token']}"}
        if token_type.lower() == "dpop":
            headers["DPoP"] = make_proof("GET", url, access_token=result["access_token"])
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url, headers=headers)
        return {"user": verified.sub, "status": response.status_code, "calendar": response.json()}

    return server


def calendar_url() -> str:
    """The calendar API on this same server (the origin of RESOURCE)."""
    resource = obo_settings.resource or ""
    origin = resource.split("/", 3)[:3]
    return "/".join(origin) + CALENDAR_PATH


def build_application(*, protected: bool = False) -> ASGIApp:
    """Django and the MCP server in one ASGI app (see the module docstring)."""
    django_app = get_asgi_application()
    server = build_mcp_server(native=not protected)
    mcp_app: ASGIApp = server.streamable_http_app(streamable_http_path="/mcp")
    if protected:
        mcp_app = protect(mcp_app, required_scopes=MCP_SCOPES)

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # The lifespan goes to the MCP app: the SDK's session manager runs in it.
        to_mcp = scope["type"] == "lifespan" or _is_mcp_path(scope.get("path", ""))
        await (mcp_app if to_mcp else django_app)(scope, receive, send)

    return application


def _is_mcp_path(path: str) -> bool:
    return path in ("/mcp", "/mcp/") or path == "/.well-known/oauth-protected-resource/mcp"

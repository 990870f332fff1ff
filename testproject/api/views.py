"""Example views: what an MCP server (or any DRF API) protected by django_auth0_obo looks like."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmIView(APIView):
    """Echo what was verified about the caller (no token, only claims that identify)."""

    def get(self, request: Request) -> Response:
        token = request.auth
        return Response(
            {
                "sub": request.user.sub,
                "scheme": token.scheme,
                "scopes": sorted(token.scopes),
                "current_actor": token.current_actor,
                "delegation_chain": token.delegation_chain,
                "jkt": token.jkt,
            }
        )

    post = get

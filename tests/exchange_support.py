"""Helpers shared by the exchange and token-cache tests (not a test module)."""

from __future__ import annotations

from typing import Any

from django_auth0_obo import token_cache
from django_auth0_obo.testing.config import CALENDAR_API, MCP_API
from django_auth0_obo.testing.tenant import LocalTenant

#: This API (the MCP server) and the downstream API it calls for the user.
THIS_API = MCP_API
DOWNSTREAM = CALENDAR_API


def configure(tenant: LocalTenant, settings: Any, **overrides: Any) -> LocalTenant:
    """Point AUTH0_OBO at the stand-in as the MCP server's OBO client; forget batched hits.

    The per-process token memo is off unless a test turns it on: these tests look at what the
    database serves (the memo has its own tests in ``test_token_memo.py``).
    """
    overrides.setdefault("TOKEN_MEMO_TTL", 0)
    settings.AUTH0_OBO = tenant.django_settings(audience=THIS_API, **overrides)
    token_cache.hit_counter.discard()
    token_cache.memo.clear()
    return tenant


def user_token(tenant: LocalTenant, **claims: Any) -> str:
    """An access token a user's MCP client got for this API."""
    claims.setdefault("scope", "mcp:read")
    return tenant.mint(audience=THIS_API, **claims)

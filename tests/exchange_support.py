"""Helpers shared by the exchange and token-cache tests (not a test module)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

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


def run_together(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Start ``count`` threads at once; return what each returned or raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results

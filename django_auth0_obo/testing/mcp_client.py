"""The official MCP Python client's own OAuth, run against the stand-in with no browser.

``oauth_client(server_url, ca_bundle)`` returns an ``httpx2.AsyncClient`` whose auth is the SDK's
``OAuthClientProvider``: on the MCP server's 401 it discovers the protected resource and the
authorization server, registers itself (RFC 7591), "opens" the authorization URL — here a plain
GET whose redirect carries the code, since the stand-in signs its test user in at once — and
trades the code (PKCE) for a token. Nothing is mocked: every step is the SDK's code over HTTP.
Needs the ``mcp`` extra.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from pydantic import AnyUrl

#: Where the client says it listens; nothing listens there: the redirect is read, not followed.
REDIRECT_URI = "http://127.0.0.1:33418/callback"


class MemoryTokenStorage:
    """The SDK's ``TokenStorage`` in memory (one client, one user)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class HeadlessBrowser:
    """The SDK's ``redirect_handler`` / ``callback_handler`` pair without a browser: it GETs the
    authorization URL and reads the code from the redirect the stand-in answers with."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self.visited: list[str] = []
        #: Called with each /authorize response (e.g. to print a trace).
        self.on_response: Callable[[httpx2.Response], Awaitable[None]] | None = None
        self._result: AuthorizationCodeResult | None = None

    async def redirect(self, authorization_url: str) -> None:
        self.visited.append(authorization_url)
        async with httpx2.AsyncClient(verify=self.tls) as client:
            response = await client.get(authorization_url)
        if self.on_response is not None:
            await self.on_response(response)
        location = response.headers.get("location")
        if response.status_code != 302 or not location:
            raise RuntimeError(f"/authorize answered {response.status_code} without a redirect")
        query = {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}
        if "code" not in query:
            raise RuntimeError(f"/authorize refused: {query.get('error')}")
        self._result = AuthorizationCodeResult(code=query["code"], state=query.get("state"))

    async def callback(self) -> AuthorizationCodeResult:
        if self._result is None:
            raise RuntimeError("No authorization code: redirect() was not called.")
        result, self._result = self._result, None
        return result


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """A TLS context trusting the system store and the stand-in's CA."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_bundle)
    return context


def oauth_client(
    server_url: str,
    ca_bundle: str,
    *,
    scope: str | None = None,
    client_name: str = "django-auth0-obo test client",
    storage: MemoryTokenStorage | None = None,
) -> tuple[httpx2.AsyncClient, HeadlessBrowser, MemoryTokenStorage]:
    """An HTTP client for ``streamable_http_client`` that logs in by itself (see module doc)."""
    tls = tls_context(ca_bundle)
    browser = HeadlessBrowser(tls)
    storage = storage or MemoryTokenStorage()
    provider = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            client_name=client_name,
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope=scope,
        ),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
    return httpx2.AsyncClient(auth=provider, verify=tls, timeout=30), browser, storage

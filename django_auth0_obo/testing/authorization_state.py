"""What the stand-in's authorization server for MCP clients remembers (see
:mod:`~django_auth0_obo.testing.authorization_server`): registered clients, pending codes,
refresh tokens and whom ``/authorize`` signs in. Kept on :class:`TenantState` as ``oauth``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: Whom ``/authorize`` signs in unless a test says otherwise.
DEFAULT_USER = "auth0|user123"


@dataclass
class RegisteredClient:
    """A client registered through RFC 7591 (``secret`` is None for a public client)."""

    client_id: str
    secret: str | None = field(repr=False)
    redirect_uris: tuple[str, ...]
    metadata: dict[str, Any]


@dataclass
class AuthorizationGrant:
    """What a code (or a refresh token) stands for."""

    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    resource: str
    sub: str
    expires_at: float


class OAuthState:
    """The authorization server's memory; ``TenantState.reset`` makes a new one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Who ``/authorize`` signs in, and extra claims for their tokens.
        self.user = DEFAULT_USER
        self.user_claims: dict[str, Any] = {}
        self.clients: dict[str, RegisteredClient] = {}
        self.codes: dict[str, AuthorizationGrant] = {}
        self.refresh_tokens: dict[str, AuthorizationGrant] = {}
        #: Every ``/authorize`` request's parameters, oldest first (for tests).
        self.authorize_requests: list[dict[str, str]] = []

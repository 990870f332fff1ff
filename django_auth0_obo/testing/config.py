"""What the stand-in tenant knows about: APIs (resource servers), clients and connections.

The defaults mirror the setup the app documents for a real tenant: an MCP server's API with a
"Custom API client" allowed to exchange tokens on behalf of users for two downstream APIs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The default audience of minted tokens: a first-party API.
DEFAULT_AUDIENCE = "https://api.example.com"
MCP_API = "https://mcp.example.com"
CALENDAR_API = "https://calendar-api.example.com"

#: The OBO-enabled Custom API client whose own API is :data:`MCP_API`.
DEFAULT_CLIENT_ID = "mcp-server-client"
#: A regular application (the ``azp`` of minted tokens): no token exchange.
APP_CLIENT_ID = "client-app"
#: A Token Vault connection configured by default.
DEFAULT_CONNECTION = "google-oauth2"

DEFAULT_API_SCOPES: dict[str, tuple[str, ...]] = {
    DEFAULT_AUDIENCE: ("read:data", "write:data"),
    MCP_API: ("mcp:read", "mcp:write"),
    CALENDAR_API: ("calendar:read", "calendar:write"),
}

GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_FEDERATED = (
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
)
TOKEN_TYPE_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
TOKEN_TYPE_FEDERATED = "http://auth0.com/oauth/token-type/federated-connection-access-token"

AUTH_METHODS = ("any", "client_secret_post", "client_secret_basic", "private_key_jwt")

#: ``handler(form) -> claims`` for a Custom Token Exchange profile; return ``{"error": ...}``
#: (optionally ``"error_description"``, ``"status"``) or raise :class:`ExchangeProfileError`.
ProfileHandler = Callable[[Mapping[str, str]], Mapping[str, Any]]


class ExchangeProfileError(Exception):
    """Raised by a Custom Token Exchange handler to refuse the exchange."""

    def __init__(
        self, error: str = "invalid_request", description: str = "", status: int = 400
    ) -> None:
        super().__init__(description or error)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class ApiConfig:
    """A resource server: its identifier (audience), scopes, and whether it accepts DPoP."""

    identifier: str
    scopes: tuple[str, ...] = ()
    allow_dpop: bool = True


@dataclass
class ClientConfig:
    """An application registered with the tenant.

    ``api`` is the ``resource_server_identifier`` of a Custom API client (the audience its
    incoming tokens carry); ``grants`` maps a downstream audience to the scopes granted.
    """

    client_id: str
    secret: str = field(repr=False)
    api: str | None = None
    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    obo_enabled: bool = True
    auth_method: str = "any"
    #: RSA public key (object, PEM or JWK) for ``private_key_jwt``; None: no assertions.
    public_key: Any = field(default=None, repr=False)

    @property
    def client_secret(self) -> str:
        return self.secret


@dataclass
class ConnectionConfig:
    """A Token Vault connection; ``users`` limits which subjects have it linked (None = all)."""

    name: str
    scopes: tuple[str, ...] = ()
    users: frozenset[str] | None = None
    expires_in: int = 3600


@dataclass
class ExchangeProfile:
    subject_token_type: str
    handler: ProfileHandler


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def normalize_grants(
    grants: Mapping[str, Iterable[str]] | None,
) -> dict[str, tuple[str, ...]]:
    return {audience: tuple(scopes) for audience, scopes in (grants or {}).items()}


def default_apis() -> dict[str, ApiConfig]:
    return {
        identifier: ApiConfig(identifier, scopes)
        for identifier, scopes in DEFAULT_API_SCOPES.items()
    }


def default_clients(mcp_secret: str, app_secret: str) -> dict[str, ClientConfig]:
    return {
        DEFAULT_CLIENT_ID: ClientConfig(
            DEFAULT_CLIENT_ID,
            mcp_secret,
            api=MCP_API,
            grants={
                CALENDAR_API: DEFAULT_API_SCOPES[CALENDAR_API],
                DEFAULT_AUDIENCE: DEFAULT_API_SCOPES[DEFAULT_AUDIENCE],
            },
        ),
        APP_CLIENT_ID: ClientConfig(
            APP_CLIENT_ID,
            app_secret,
            grants={
                DEFAULT_AUDIENCE: DEFAULT_API_SCOPES[DEFAULT_AUDIENCE],
                MCP_API: DEFAULT_API_SCOPES[MCP_API],
            },
            obo_enabled=False,
        ),
    }


def default_connections() -> dict[str, ConnectionConfig]:
    return {
        DEFAULT_CONNECTION: ConnectionConfig(
            DEFAULT_CONNECTION,
            scopes=("openid", "https://www.googleapis.com/auth/calendar.events"),
        )
    }

"""What an MCP client's own OAuth needs from the stand-in tenant, with no browser and no human.

- RFC 8414 authorization server metadata at ``/.well-known/oauth-authorization-server`` (the same
  document as OIDC discovery, as Auth0 serves both);
- RFC 7591 dynamic client registration at ``/oidc/register`` (Auth0's path), public clients
  (``token_endpoint_auth_method: none``) or confidential ones;
- ``/authorize`` with PKCE (S256 only): it signs the configured test user in at once — no login
  page, no consent page, ``prompt=consent`` accepted — and redirects straight back with a code;
- the ``authorization_code`` grant at ``/oauth/token``, issuing a user token whose audience is the
  requested RFC 8707 ``resource`` (or Auth0's ``audience``), which must be a registered API.
  ``offline_access`` is accepted and answered with a refresh token, usable once (rotation).

Codes are single-use, bound to the client, the redirect URI and the PKCE challenge, and expire
after :data:`CODE_LIFETIME` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django_auth0_obo.testing.token_endpoint import OAuthError

if TYPE_CHECKING:
    from django_auth0_obo.testing.tenant import LocalTenant

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"
GRANTS = frozenset({GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN})

#: Endpoint names (for ``count`` and ``inject_fault``) and their methods.
ROUTES = {
    "/.well-known/oauth-authorization-server": "as_metadata",
    "/authorize": "authorize",
    "/oidc/register": "register",
}
METHODS = {"as_metadata": "GET", "authorize": "GET", "register": "POST"}

CODE_LIFETIME = 60
#: Scopes that are about the login, not the API: accepted, never put in an access token.
LOGIN_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DEFAULT_USER = "auth0|user123"

Answer = tuple[int, bytes, dict[str, str]]


@dataclass
class RegisteredClient:
    """A client registered through RFC 7591 (``secret`` is None for a public client)."""

    client_id: str
    secret: str | None = field(repr=False)
    redirect_uris: tuple[str, ...]
    metadata: dict[str, Any]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    resource: str
    sub: str
    expires_at: float


class OAuthState:
    """The authorization server's state on a tenant; :meth:`LocalTenant.reset` makes a new one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Who ``/authorize`` signs in, and extra claims for their tokens.
        self.user = DEFAULT_USER
        self.user_claims: dict[str, Any] = {}
        self.clients: dict[str, RegisteredClient] = {}
        self.codes: dict[str, _Code] = {}
        self.refresh_tokens: dict[str, _Code] = {}
        #: Every ``/authorize`` request's parameters, oldest first (for tests).
        self.authorize_requests: list[dict[str, str]] = []


def handle(tenant: LocalTenant, name: str, path: str, headers: Any, body: bytes) -> Answer:
    """Answer one request to an endpoint of :data:`ROUTES`."""
    if name == "as_metadata":
        return _json(200, authorization_server_metadata(tenant))
    if name == "register":
        try:
            return _json(201, register(tenant, body))
        except OAuthError as exc:
            return _json(exc.status, {"error": exc.error, "error_description": exc.description})
    return authorize(tenant, path)


def authorization_server_metadata(tenant: LocalTenant) -> dict[str, Any]:
    """RFC 8414: Auth0's discovery document (it already names every endpoint we serve)."""
    document = tenant.discovery_document()
    document["code_challenge_methods_supported"] = ["S256"]
    document["token_endpoint_auth_methods_supported"] = [
        *document["token_endpoint_auth_methods_supported"],
        "none",
    ]
    return document


def register(tenant: LocalTenant, body: bytes) -> dict[str, Any]:
    """RFC 7591 §3: register a client from its metadata; answer with its id (and secret)."""
    try:
        metadata = json.loads(body or b"{}")
    except ValueError as exc:
        raise OAuthError("invalid_client_metadata", "The body is not JSON.") from exc
    if not isinstance(metadata, dict):
        raise OAuthError("invalid_client_metadata", "The body must be a JSON object.")
    redirect_uris = metadata.get("redirect_uris")
    if (
        not isinstance(redirect_uris, list)
        or not redirect_uris
        or not all(isinstance(u, str) and _is_redirect_uri(u) for u in redirect_uris)
    ):
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be absolute URIs.")
    method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in ("none", "client_secret_post", "client_secret_basic"):
        raise OAuthError("invalid_client_metadata", "Unsupported token_endpoint_auth_method.")
    client_id = f"dcr_{secrets.token_urlsafe(12)}"
    secret = None if method == "none" else secrets.token_urlsafe(32)
    answer: dict[str, Any] = {
        **{k: v for k, v in metadata.items() if k != "client_secret"},
        "client_id": client_id,
        "client_id_issued_at": int(time.time()),
        "token_endpoint_auth_method": method,
        "grant_types": metadata.get("grant_types") or [GRANT_AUTHORIZATION_CODE],
        "response_types": metadata.get("response_types") or ["code"],
    }
    if secret is not None:
        answer["client_secret"] = secret
        answer["client_secret_expires_at"] = 0
    with tenant.oauth.lock:
        tenant.oauth.clients[client_id] = RegisteredClient(
            client_id, secret, tuple(redirect_uris), answer
        )
    return answer


def authorize(tenant: LocalTenant, path: str) -> Answer:
    """Sign the test user in and redirect back with a code (or an error, RFC 6749 §4.1.2.1)."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(path).query, keep_blank_values=True).items()}
    state = tenant.oauth
    with state.lock:
        state.authorize_requests.append(dict(query))
        client = state.clients.get(query.get("client_id", ""))
    redirect_uri = query.get("redirect_uri", "")
    if client is None:
        return _json(400, {"error": "invalid_client", "error_description": "Unknown client."})
    if redirect_uri not in client.redirect_uris:
        return _json(
            400, {"error": "invalid_request", "error_description": "Unregistered redirect_uri."}
        )
    back: dict[str, str] = {}
    if "state" in query:
        back["state"] = query["state"]
    try:
        if query.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "Only response_type=code.")
        challenge = query.get("code_challenge", "")
        if query.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", "PKCE with S256 is required.")
        resource = query.get("resource") or query.get("audience") or tenant.default_audience
        if resource not in tenant.apis:
            raise OAuthError("invalid_target", f"Service not found: {resource}.")
        code = secrets.token_urlsafe(32)
        with state.lock:
            state.codes[code] = _Code(
                client.client_id,
                redirect_uri,
                challenge,
                query.get("scope", ""),
                resource,
                state.user,
                time.time() + CODE_LIFETIME,
            )
        back["code"] = code
    except OAuthError as exc:
        back.update(error=exc.error, error_description=exc.description)
    separator = "&" if "?" in redirect_uri else "?"
    location = f"{redirect_uri}{separator}{urlencode(back)}"
    return 302, b"", {"Location": location, "Cache-Control": "no-store"}


def token_grant(
    tenant: LocalTenant, headers: Mapping[str, list[str]], form: Mapping[str, str]
) -> dict[str, Any]:
    """The ``authorization_code`` and ``refresh_token`` grants (raises :class:`OAuthError`)."""
    client = _authenticate(tenant, headers, form)
    state = tenant.oauth
    if form.get("grant_type") == GRANT_REFRESH_TOKEN:
        with state.lock:
            grant = state.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Unknown or used refresh token.", 400)
    else:
        with state.lock:
            grant = state.codes.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client.client_id or time.time() > grant.expires_at:
            raise OAuthError("invalid_grant", "Invalid authorization code.")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization.")
        if not hmac.compare_digest(_s256(form.get("code_verifier", "")), grant.challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed.")
        requested = form.get("resource")
        if requested and requested != grant.resource:
            raise OAuthError("invalid_target", "resource differs from the authorization.")
    api = tenant.apis[grant.resource]
    asked = grant.scope.split()
    scopes = [s for s in asked if s in api.scopes] if asked else list(api.scopes)
    claims: dict[str, Any] = {
        **state.user_claims,
        "sub": grant.sub,
        "aud": grant.resource,
        "azp": client.client_id,
        "client_id": client.client_id,
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    lifetime = tenant.exchange_token_lifetime
    body: dict[str, Any] = {
        "access_token": tenant._issue(claims, lifetime),
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scopes),
    }
    if "offline_access" in asked:
        refresh = secrets.token_urlsafe(32)
        with state.lock:
            state.refresh_tokens[refresh] = grant
        body["refresh_token"] = refresh
    return body


def _authenticate(
    tenant: LocalTenant, headers: Mapping[str, list[str]], form: Mapping[str, str]
) -> RegisteredClient:
    authorization = (headers.get("authorization") or [""])[0]
    secret: str | None = None
    client_id = form.get("client_id", "")
    if authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except ValueError as exc:
            raise OAuthError("invalid_client", "Malformed Basic credentials.", 401) from exc
        client_id, _, secret = decoded.partition(":")
    elif "client_secret" in form:
        secret = form["client_secret"]
    with tenant.oauth.lock:
        client = tenant.oauth.clients.get(client_id)
    if client is None:
        raise OAuthError("invalid_client", "Unknown client.", 401)
    if client.secret is not None and not (
        secret is not None and hmac.compare_digest(secret.encode(), client.secret.encode())
    ):
        raise OAuthError("invalid_client", "Invalid client credentials.", 401)
    return client


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_redirect_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme not in ("http", "https"))


def _json(status: int, payload: Any) -> Answer:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json"}

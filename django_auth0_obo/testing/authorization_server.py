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
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django_auth0_obo.testing.authorization_state import AuthorizationGrant, RegisteredClient
from django_auth0_obo.testing.oauth_endpoint import OAuthError
from django_auth0_obo.testing.state import TenantState

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"

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

Answer = tuple[int, bytes, dict[str, str]]


def handle(state: TenantState, name: str, path: str, body: bytes) -> Answer:
    """Answer one request to an endpoint of :data:`ROUTES`."""
    if name == "as_metadata":
        return _json(200, authorization_server_metadata(state))
    if name == "register":
        try:
            return _json(201, register(state, body))
        except OAuthError as exc:
            return _json(exc.status, {"error": exc.error, "error_description": exc.description})
    return authorize(state, path)


def authorization_server_metadata(state: TenantState) -> dict[str, Any]:
    """RFC 8414: Auth0's discovery document (it already names every endpoint we serve)."""
    document = state.discovery_document()
    document["code_challenge_methods_supported"] = ["S256"]
    document["token_endpoint_auth_methods_supported"] = [
        *document["token_endpoint_auth_methods_supported"],
        "none",
    ]
    return document


def register(state: TenantState, body: bytes) -> dict[str, Any]:
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
    with state.oauth.lock:
        state.oauth.clients[client_id] = RegisteredClient(
            client_id, secret, tuple(redirect_uris), answer
        )
    return answer


def authorize(state: TenantState, path: str) -> Answer:
    """Sign the test user in and redirect back with a code (or an error, RFC 6749 §4.1.2.1)."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(path).query, keep_blank_values=True).items()}
    oauth = state.oauth
    with oauth.lock:
        oauth.authorize_requests.append(dict(query))
        client = oauth.clients.get(query.get("client_id", ""))
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
        resource = query.get("resource") or query.get("audience") or state.default_audience
        if resource not in state.apis:
            raise OAuthError("invalid_target", f"Service not found: {resource}.")
        code = secrets.token_urlsafe(32)
        with oauth.lock:
            oauth.codes[code] = AuthorizationGrant(
                client.client_id,
                redirect_uri,
                challenge,
                query.get("scope", ""),
                resource,
                oauth.user,
                time.time() + CODE_LIFETIME,
            )
        back["code"] = code
    except OAuthError as exc:
        back.update(error=exc.error, error_description=exc.description)
    separator = "&" if "?" in redirect_uri else "?"
    location = f"{redirect_uri}{separator}{urlencode(back)}"
    return 302, b"", {"Location": location, "Cache-Control": "no-store"}


def token_grant(
    state: TenantState, headers: Mapping[str, list[str]], form: Mapping[str, str]
) -> dict[str, Any]:
    """The ``authorization_code`` and ``refresh_token`` grants (raises :class:`OAuthError`)."""
    client = _authenticate(state, headers, form)
    oauth = state.oauth
    if form.get("grant_type") == GRANT_REFRESH_TOKEN:
        with oauth.lock:
            grant = oauth.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Unknown or used refresh token.", 400)
    else:
        with oauth.lock:
            grant = oauth.codes.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client.client_id or time.time() > grant.expires_at:
            raise OAuthError("invalid_grant", "Invalid authorization code.")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization.")
        if not hmac.compare_digest(_s256(form.get("code_verifier", "")), grant.challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed.")
        requested = form.get("resource")
        if requested and requested != grant.resource:
            raise OAuthError("invalid_target", "resource differs from the authorization.")
    api = state.apis[grant.resource]
    asked = grant.scope.split()
    scopes = [s for s in asked if s in api.scopes] if asked else list(api.scopes)
    claims: dict[str, Any] = {
        **oauth.user_claims,
        "sub": grant.sub,
        "aud": grant.resource,
        "azp": client.client_id,
        "client_id": client.client_id,
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    lifetime = state.exchange_token_lifetime
    body: dict[str, Any] = {
        "access_token": state.issue(claims, lifetime),
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": " ".join(scopes),
    }
    if "offline_access" in asked:
        refresh = secrets.token_urlsafe(32)
        with oauth.lock:
            oauth.refresh_tokens[refresh] = grant
        body["refresh_token"] = refresh
    return body


def _authenticate(
    state: TenantState, headers: Mapping[str, list[str]], form: Mapping[str, str]
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
    with state.oauth.lock:
        client = state.oauth.clients.get(client_id)
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


#: The token endpoint's handlers for this server's grants (``oauth_endpoint.handle_token_request``).
GRANT_HANDLERS = {GRANT_AUTHORIZATION_CODE: token_grant, GRANT_REFRESH_TOKEN: token_grant}

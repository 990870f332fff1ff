"""MCP servers built with the official MCP Python SDK (extra ``django-auth0-obo[mcp]``).

Two ways in, one verifier behind both (:func:`django_auth0_obo.verification.averify`):

- :class:`Auth0TokenVerifier`, the SDK-native path: pass it as the SDK's ``token_verifier`` with
  :func:`auth_settings`. The SDK's middleware reads Bearer tokens only and writes the challenges
  itself (no ``scope=``); the SDK serves the protected resource metadata at
  ``/.well-known/oauth-protected-resource/<path>``. The SDK decides on the required scopes after
  the verifier, so the verifier audits a request only when told them too.
- :func:`protect`, the full-featured path: wrap the SDK's streamable-HTTP app built *without* the
  SDK's auth. Every HTTP request is authenticated here — Bearer and DPoP, the same checks, audit
  and challenges as ``Auth0Authentication`` (401 with ``resource_metadata=`` and ``scope=``, 403
  ``insufficient_scope``) — and the metadata for the protected resource is served by the wrapper.

Either way a tool gets the caller's :class:`VerifiedToken` from :func:`get_verified_token` and
may ``await get_verified_token().aon_behalf_of(...)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.views.decorators.debug import sensitive_variables
from mcp.server.auth.middleware.auth_context import auth_context_var, get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import ConfigDict, Field
from starlette.authentication import AuthCredentials

from django_auth0_obo import audit, challenges, dpop_nonce
from django_auth0_obo.api_exceptions import INSUFFICIENT_SCOPE
from django_auth0_obo.conf import obo_settings
from django_auth0_obo.exceptions import AuthenticationError, TenantUnavailable
from django_auth0_obo.metadata import CACHE_SECONDS, build_metadata
from django_auth0_obo.verification import MissingCredentials, averify, challenge_for
from django_auth0_obo.verified import VerifiedToken
from django_auth0_obo.workers import run_in_worker

__all__ = [
    "Auth0AccessToken",
    "Auth0TokenVerifier",
    "auth_settings",
    "get_verified_token",
    "protect",
]

logger = logging.getLogger("django_auth0_obo")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METADATA_PREFIX = "/.well-known/oauth-protected-resource"
#: Django's ``get_host`` accepts these when DEBUG is on and ALLOWED_HOSTS is empty.
DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")
#: Policy violation: the close code refusing a WebSocket handshake (RFC 6455 §7.4.1).
WS_POLICY_VIOLATION = 1008


def get_verified_token() -> VerifiedToken:
    """The :class:`VerifiedToken` of the MCP request being served (either path).

    Raises LookupError outside an authenticated request, so a tool never acts for nobody.
    """
    access = get_access_token()
    if isinstance(access, Auth0AccessToken) and access.verified is not None:
        return access.verified
    raise LookupError("No verified Auth0 token for this request.")


class Auth0AccessToken(AccessToken):
    """The SDK's ``AccessToken`` carrying this app's :class:`VerifiedToken` (never serialized)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    verified: VerifiedToken | None = Field(default=None, exclude=True, repr=False)


class Auth0TokenVerifier:
    """The MCP SDK's ``TokenVerifier`` backed by this app's checks, caches and audit.

    ``audience`` narrows the accepted audiences (default: the settings'); ``resource`` is the URL
    this server is reached at (default: RESOURCE), used for the audit path and the token's
    ``resource``. ``required_scopes`` are those given to :func:`auth_settings`: the SDK refuses a
    token lacking one only after the verifier, so the verifier's audit row says what the SDK will
    decide (``denied``/``insufficient_scope`` or ``allowed``). Without them the verifier cannot
    know the outcome and writes no row.
    """

    def __init__(
        self,
        *,
        audience: str | Sequence[str] | None = None,
        resource: str | None = None,
        required_scopes: Iterable[str] | None = None,
    ) -> None:
        self.audience = audience
        self.resource = resource
        self.required_scopes = None if required_scopes is None else tuple(required_scopes)
        self._warned = False

    @sensitive_variables()
    async def verify_token(self, token: str) -> AccessToken | None:
        resource = self.resource or obo_settings.resource or ""
        try:
            verified = await averify(
                f"Bearer {token}", method="POST", url=resource, audience=self.audience
            )
        except AuthenticationError as error:
            logger.info("Rejected %s credentials: %s", error.error, error.description)
            return None
        except TenantUnavailable as error:
            logger.warning("Cannot verify tokens: %s", error.description)
            return None
        if self.required_scopes is not None:
            path = urlsplit(resource).path or "/"
            await _audit_scopes(verified, "POST", path, self.required_scopes)
        elif not self._warned and obo_settings.AUDIT != "off":
            self._warned = True
            logger.warning(
                "Auth0TokenVerifier was given no required_scopes, so it audits nothing: pass it "
                "the scopes given to auth_settings() (() when none are required)."
            )
        return _access_token(verified)


def _access_token(verified: VerifiedToken) -> Auth0AccessToken:
    """The SDK's view of a verified token: its principal is (``azp``, ``iss``, ``sub``), which
    the SDK binds streamable-HTTP sessions to."""
    claims = dict(verified.claims)
    client_id = claims.get("azp") or claims.get("client_id") or ""
    return Auth0AccessToken(
        token=verified.token,
        client_id=client_id if isinstance(client_id, str) else "",
        scopes=sorted(verified.scopes),
        expires_at=verified.expires_at,
        resource=verified.audience or None,
        subject=verified.sub,
        claims=claims,
        verified=verified,
    )


def auth_settings(
    *, resource: str | None = None, required_scopes: Iterable[str] | None = None
) -> AuthSettings:
    """``AuthSettings`` for the SDK from ``AUTH0_OBO``: the tenant issuer, ``resource`` (default
    RESOURCE) and the scopes every request needs (default: none). The verifier checks ``aud``
    itself, so the SDK's own resource check is off."""
    return AuthSettings(
        issuer_url=f"https://{obo_settings.primary_domain}/",  # type: ignore[arg-type]
        resource_server_url=resource or obo_settings.resource,  # type: ignore[arg-type]
        required_scopes=list(required_scopes or ()),
        validate_token_resource=False,
    )


def protect(
    app: ASGIApp,
    *,
    required_scopes: Sequence[str] = (),
    resource: str | None = None,
    audience: str | Sequence[str] | None = None,
) -> ASGIApp:
    """Wrap an ASGI app so every HTTP request carries a valid Auth0 token (Bearer or DPoP).

    ``resource`` (default RESOURCE) is the URL clients connect to; its RFC 9728 metadata is
    answered by the wrapper at ``/.well-known/oauth-protected-resource<path>``. A request whose
    ``Host`` ALLOWED_HOSTS refuses (Django's rule; ``X-Forwarded-Host`` is not read) gets 400: a
    DPoP proof's ``htu`` and the challenges' ``resource_metadata=`` name only hosts served here.
    CORS preflights on an allowed host and the lifespan pass through untouched. WebSocket
    handshakes are refused (closed with 1008, never authenticated); other scope types raise.
    """
    scopes = tuple(required_scopes)

    @sensitive_variables()  # its locals hold the request's headers
    async def protected(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await _not_http(app, scope, receive, send)
            return
        headers = _headers(scope)
        origin = _request_origin(scope, headers)
        path = scope.get("root_path", "") + scope["path"]
        if origin is None or not path.startswith("/"):
            body = {
                "error": "invalid_request",
                "error_description": "Invalid Host header or request path.",
            }
            await _send_json(send, 400, body)
            return
        if scope["method"] == "OPTIONS":
            await app(scope, receive, send)
            return
        target = resource or obo_settings.resource
        if scope["method"] in ("GET", "HEAD") and _is_metadata_path(scope, target):
            await _send_json(send, 200, build_metadata(target), _metadata_headers())
            return
        send = dpop_nonce.asgi_send(send, "dpop" in headers)  # refusals and the app's answers
        url = origin + path
        try:
            verified = await averify(
                headers.get("authorization"),
                method=scope["method"],
                url=url,
                dpop=headers.get("dpop"),
                audience=audience,
            )
        except AuthenticationError as error:
            shown = None if isinstance(error, MissingCredentials) else error
            logger.info("Rejected %s credentials: %s", error.error, error.description)
            header = challenge_for(
                url, shown, scopes=scopes, resource_metadata=challenge_url(origin, target)
            )
            body = {"error": error.error, "error_description": error.description}
            await _send_json(send, error.status_code, body, [(b"www-authenticate", header)])
            return
        except TenantUnavailable as error:
            logger.warning("Cannot verify tokens: %s", error.description)
            body = {"error": error.error, "error_description": error.description}
            await _send_json(send, 503, body, [(b"retry-after", "30")])
            return
        missing = await _audit_scopes(verified, scope["method"], path, scopes)
        if missing:
            description = f"Missing scope(s): {' '.join(missing)}."
            header = challenges.from_settings(
                resource_metadata=challenge_url(origin, target),
                error=INSUFFICIENT_SCOPE,
                error_description=description,
                scope=" ".join(scopes),
                dpop_mode="required" if verified.scheme == "DPoP" else "disabled",
            )
            body = {"error": INSUFFICIENT_SCOPE, "error_description": description}
            await _send_json(send, 403, body, [(b"www-authenticate", header)])
            return
        # What the SDK's own auth middleware would leave: the user (the SDK binds each session to
        # its creator's principal, so another token cannot use it) and the context variable its
        # get_access_token() and our get_verified_token() read.
        user = AuthenticatedUser(_access_token(verified))
        scope["user"] = user
        scope["auth"] = AuthCredentials(user.scopes)
        reset = auth_context_var.set(user)
        try:
            await app(scope, receive, send)
        finally:
            auth_context_var.reset(reset)

    return protected


def challenge_url(origin: str, resource: str | None) -> str:
    """The metadata URL ``protect`` serves for ``resource``, on the request's (checked)
    ``origin``, so a client is never pointed at a host it merely named."""
    path = urlsplit(resource).path.rstrip("/") if resource else ""
    return f"{origin}{METADATA_PREFIX}{path}"


async def _not_http(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Only the lifespan reaches the app unauthenticated. A WebSocket handshake is refused (no
    token checks run on it); any other scope type raises, as the ASGI spec asks of a protocol an
    app does not understand."""
    if scope["type"] == "lifespan":
        await app(scope, receive, send)
    elif scope["type"] == "websocket":
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
    else:
        raise ValueError(f"protect() refuses ASGI {scope['type']!r} connections.")


async def _audit_scopes(
    verified: VerifiedToken, method: str, path: str, required: Iterable[str]
) -> list[str]:
    """The ``required`` scopes ``verified`` lacks, after auditing the decision they make:
    denied (``insufficient_scope``) when any is missing, else allowed."""
    missing = [scope for scope in required if scope not in verified.scopes]
    if missing:
        await _audit(verified, method, path, audit.DENIED, INSUFFICIENT_SCOPE)
    else:
        await _audit(verified, method, path, audit.ALLOWED, "")
    return missing


async def _audit(
    verified: VerifiedToken,
    method: str,
    path: str,
    outcome: str,
    reason: str,
) -> None:
    """Write the request's audit row (off the loop) when AUDIT wants it."""
    mode = obo_settings.AUDIT
    if mode == "off" or (
        outcome == audit.ALLOWED and mode == "delegated" and not verified.is_delegated
    ):
        return
    fields = audit.token_fields(verified, method=method, path=path, view_name="mcp")
    fields.update(outcome=outcome, reason=reason)
    await run_in_worker(audit.write_event, fields)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name; a repeated ``Authorization`` or ``DPoP`` is joined
    with a comma, which the parsers then refuse."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _request_origin(scope: Scope, headers: dict[str, str]) -> str | None:
    """``scheme://host`` the client used (for DPoP ``htu`` and ``resource_metadata=``): the
    ``Host`` header, else the server's address; None when :func:`_allowed_host` refuses it."""
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = f"{server[0]}:{server[1]}" if server[1] else server[0]
    return f"{scope.get('scheme', 'http')}://{host}" if _allowed_host(host) else None


def _allowed_host(host: str) -> bool:
    """Django's ``get_host`` check: a well-formed host that ALLOWED_HOSTS (with its DEBUG default)
    accepts, as the DRF path requires through ``request.build_absolute_uri()``."""
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = list(DEBUG_HOSTS)
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _is_metadata_path(scope: Scope, resource: str | None) -> bool:
    path = str(scope.get("root_path", "")) + str(scope["path"])
    resource_path = urlsplit(resource).path.rstrip("/") if resource else ""
    return path.rstrip("/") == METADATA_PREFIX + resource_path


def _metadata_headers() -> list[tuple[bytes, str]]:
    return [
        (b"cache-control", f"public, max-age={CACHE_SECONDS}"),
        (b"access-control-allow-origin", "*"),
    ]


async def _send_json(
    send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, str]] = ()
) -> None:
    payload = json.dumps(body).encode("utf-8")
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        *((name, value.encode("latin-1")) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})

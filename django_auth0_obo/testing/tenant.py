"""``LocalTenant``: a real HTTPS stand-in for an Auth0 tenant, on loopback, for tests and demos.

It serves OIDC discovery, a JWKS and ``/oauth/token`` over TLS with a throwaway CA, signs real
JWTs with real keys, and lets tests rotate keys, inject faults, count requests and inspect what
the token endpoint received. It never imports the app's verification code: it plays the tenant,
so it can catch the app's bugs.

Default configuration (restored by :meth:`LocalTenant.reset`):

* APIs: ``https://api.example.com`` (default audience; ``read:data write:data``),
  ``https://mcp.example.com`` (``mcp:read mcp:write``) and ``https://calendar-api.example.com``
  (``calendar:read calendar:write``); all accept DPoP.
* Clients: ``mcp-server-client`` — a Custom API client for ``https://mcp.example.com``, on-behalf-of
  exchange enabled, user-subject grants to the calendar API and ``https://api.example.com`` with all
  their scopes; ``client-app`` — a regular application (the default ``azp``), no exchange, grants to
  ``https://api.example.com`` and ``https://mcp.example.com``. Secrets are random per tenant:
  ``tenant.clients[client_id].secret``.
* Token Vault connection ``google-oauth2`` linked for every user.
* Signing key: one RS256 key (shared across tenants in one process unless ``fresh_keys=True``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from django_auth0_obo.testing import config
from django_auth0_obo.testing.authorization_state import OAuthState
from django_auth0_obo.testing.client_assertions import load_public_key
from django_auth0_obo.testing.config import (
    ApiConfig,
    ClientConfig,
    ConnectionConfig,
    ExchangeProfile,
    ProfileHandler,
)
from django_auth0_obo.testing.faults import Fault
from django_auth0_obo.testing.jws import encode_jws, merge
from django_auth0_obo.testing.server import ROUTES, Serving
from django_auth0_obo.testing.state import FederatedToken, TenantState, TokenRequest
from django_auth0_obo.testing.tenant_keys import KeyRing, SigningKey

__all__ = ["FederatedToken", "LocalTenant"]

T = TypeVar("T")


class _Shared(Generic[T]):
    """A :class:`LocalTenant` attribute that lives on its :class:`TenantState` (read and write),
    so tests can keep writing ``tenant.max_delegation_depth = 2``."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Shared[T]: ...
    @overload
    def __get__(self, obj: LocalTenant, owner: type[Any]) -> T: ...
    def __get__(self, obj: LocalTenant | None, owner: type[Any]) -> T | _Shared[T]:
        if obj is None:
            return self
        value: T = getattr(obj.state, self.name)
        return value

    def __set__(self, obj: LocalTenant, value: T) -> None:
        setattr(obj.state, self.name, value)


class LocalTenant:
    """A local Auth0 tenant over real HTTPS on 127.0.0.1 (thread-safe).

    Use as a context manager or call :meth:`start` / :meth:`stop`. URLs and the CA bundle exist
    once started; :meth:`reset` restores the initial configuration without restarting.
    """

    #: The registry and tunables, kept on :attr:`state` and restored by :meth:`reset`.
    keys: _Shared[KeyRing] = _Shared()
    default_audience: _Shared[str] = _Shared()
    apis: _Shared[dict[str, ApiConfig]] = _Shared()
    clients: _Shared[dict[str, ClientConfig]] = _Shared()
    connections: _Shared[dict[str, ConnectionConfig]] = _Shared()
    exchange_profiles: _Shared[dict[str, ExchangeProfile]] = _Shared()
    #: Longest ``act`` chain an exchange may produce (Auth0 documents 5); past it the token
    #: endpoint answers 400 ``invalid_request``.
    max_delegation_depth: _Shared[int] = _Shared()
    #: ``expires_in`` of tokens issued by the token endpoint, seconds.
    exchange_token_lifetime: _Shared[int] = _Shared()
    #: ``Cache-Control: public, max-age=N`` on the JWKS when set.
    jwks_max_age: _Shared[int | None] = _Shared()
    #: DPoP proof algorithms the token endpoint accepts (Auth0: ES256).
    dpop_algorithms: _Shared[tuple[str, ...]] = _Shared()
    #: Token Vault answers given out, by the opaque token.
    federated_tokens: _Shared[dict[str, FederatedToken]] = _Shared()
    #: The authorization server MCP clients log in with: ``oauth.user`` is whom ``/authorize``
    #: signs in; registered clients, codes and ``/authorize`` requests are kept here.
    oauth: _Shared[OAuthState] = _Shared()

    def __init__(
        self,
        *,
        port: int = 0,
        default_audience: str = config.DEFAULT_AUDIENCE,
        signing_alg: str = "RS256",
        fresh_keys: bool = False,
        client_secret: str | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self._requested_port = port
        #: What the server and the token endpoint work on (see :mod:`.state`).
        self.state = TenantState(
            default_audience=default_audience,
            signing_key=SigningKey.generate(signing_alg, fresh=fresh_keys),
            client_secret=client_secret or config.new_secret(),
            app_secret=config.new_secret(),
        )
        self._lock = threading.RLock()
        self._serving: Serving | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalTenant:
        """Bind a free port (or the one asked for), write the CA and serve in a daemon thread."""
        with self._lock:
            if self._serving is not None:
                return self
            self._serving = Serving.start(
                self.state, (self.host, self._requested_port), name="auth0-local-tenant"
            )
            self.state.serving_at = f"https://{self.host}:{self._serving.port}"
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and delete the CA and key files."""
        with self._lock:
            serving, self._serving = self._serving, None
            self.state.serving_at = None
        if serving is not None:
            serving.stop()

    def __enter__(self) -> LocalTenant:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to the initial state: keys, APIs, clients, connections, profiles, faults,
        counters, recorded requests, nonce demand and tunables. The server keeps running and
        client secrets stay the same."""
        self.state.reset()

    # -- addresses ---------------------------------------------------------------------------

    def _running(self) -> Serving:
        serving = self._serving
        if serving is None:
            raise RuntimeError("the local tenant is not started")
        return serving

    @property
    def started(self) -> bool:
        return self._serving is not None

    @property
    def port(self) -> int:
        return self._running().port

    @property
    def domain(self) -> str:
        """``127.0.0.1:PORT`` — what goes in the ``DOMAIN`` setting."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def issuer(self) -> str:
        """``https://127.0.0.1:PORT/``, with Auth0's trailing slash."""
        return self.state.issuer

    @property
    def discovery_url(self) -> str:
        return self.state.discovery_url

    @property
    def jwks_uri(self) -> str:
        return self.state.jwks_uri

    @property
    def token_endpoint(self) -> str:
        return self.state.token_endpoint

    @property
    def ca_bundle(self) -> str:
        """Path of the CA certificate PEM to trust (``requests``' ``verify=``)."""
        return str(self._running().tls.ca_cert)

    @property
    def client_id(self) -> str:
        """The default OBO client, ``mcp-server-client``."""
        return config.DEFAULT_CLIENT_ID

    @property
    def client_secret(self) -> str:
        return self.clients[config.DEFAULT_CLIENT_ID].secret

    def django_settings(
        self, audience: str | list[str] | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """An ``AUTH0_OBO`` dict pointing at this tenant, as the default OBO client.

        Audit rows are written synchronously (``AUDIT_SYNC``), so a test sees them as soon as a
        request returns; pass ``AUDIT_SYNC=False`` to exercise the buffered writer.
        """
        return {
            "DOMAIN": self.domain,
            "AUDIENCE": audience if audience is not None else self.default_audience,
            "CLIENT_ID": config.DEFAULT_CLIENT_ID,
            "CLIENT_SECRET": self.client_secret,
            "TLS_CA_BUNDLE": self.ca_bundle,
            "AUDIT_SYNC": True,
            **overrides,
        }

    # -- documents ---------------------------------------------------------------------------

    def discovery_document(self) -> dict[str, Any]:
        """The OpenID configuration, shaped like Auth0's."""
        return self.state.discovery_document()

    def jwks(self) -> dict[str, Any]:
        """The JWKS document currently served."""
        return self.keys.jwks()

    # -- keys --------------------------------------------------------------------------------

    @property
    def signing_kid(self) -> str:
        return self.keys.signing_key.kid

    def add_key(self, alg: str = "RS256", kid: str | None = None, *, publish: bool = True) -> str:
        """Add a fresh key (published in the JWKS unless ``publish=False``); returns its kid."""
        return self.keys.add(alg, kid, publish=publish)

    def unpublished_key(self, alg: str = "RS256", kid: str | None = None) -> str:
        """A key the JWKS does not list (``mint(kid=...)`` for unknown-kid tests)."""
        return self.keys.add(alg, kid, publish=False)

    def publish_key(self, kid: str) -> None:
        self.keys.publish(kid)

    def retire_key(self, kid: str) -> None:
        """Drop ``kid`` from the JWKS; it can still sign, so its tokens must now be refused."""
        self.keys.retire(kid)

    def rotate(self, alg: str | None = None) -> str:
        """New signing key (published); the previous key stays published until retired."""
        return self.keys.rotate(alg)

    def use_key(self, kid: str) -> None:
        """Make an existing key the signing key."""
        self.keys.use(kid)

    def public_key_pem(self, kid: str | None = None) -> bytes:
        """PEM of a key's public half (default: the signing key) — alg-confusion material."""
        return self.keys.get(kid or self.signing_kid).public_key_pem()

    # -- tokens ------------------------------------------------------------------------------

    def mint(
        self,
        sub: str = "auth0|user123",
        audience: str | list[str] | None = None,
        scope: str | Iterable[str] | None = None,
        permissions: list[str] | None = None,
        act: Mapping[str, Any] | None = None,
        azp: str | None = None,
        org_id: str | None = None,
        cnf_jkt: str | None = None,
        expires_in: int = 3600,
        iat: int | float | None = None,
        nbf: int | float | None = None,
        issuer: str | None = None,
        claims: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
        headers: Mapping[str, Any] | None = None,
        kid: str | None = None,
        algorithm: str | None = None,
        key: Any = None,
    ) -> str:
        """Sign an Auth0-shaped access token (header ``typ: JWT``, ``kid``).

        Defaults: ``iss`` this tenant, ``aud`` :attr:`default_audience`, ``azp`` ``client-app``,
        ``iat`` now, ``exp`` ``iat + expires_in``. ``claims`` merge last (``REMOVE`` drops one);
        ``omit`` drops claims; ``headers`` merge into the JWS header. ``kid`` signs with any known
        key, published or not; an unknown ``kid`` (e.g. ``"not-published"``) is written in the
        header over the signing key's signature. ``key`` signs with a raw key (header ``kid``
        stays the signing kid unless given). ``algorithm="HS256"`` without ``key`` uses the
        public key PEM as HMAC secret (the confusion attack); ``"none"`` leaves it unsigned.
        """
        now = int(time.time()) if iat is None else iat
        payload: dict[str, Any] = {
            "iss": issuer if issuer is not None else self.issuer,
            "sub": sub,
            "aud": audience if audience is not None else self.default_audience,
            "iat": now,
            "exp": now + expires_in,
            "azp": azp if azp is not None else config.APP_CLIENT_ID,
        }
        if scope is not None:
            payload["scope"] = scope if isinstance(scope, str) else " ".join(scope)
        if permissions is not None:
            payload["permissions"] = list(permissions)
        if act is not None:
            payload["act"] = dict(act)
        if org_id is not None:
            payload["org_id"] = org_id
        if cnf_jkt is not None:
            payload["cnf"] = {"jkt": cnf_jkt}
        if nbf is not None:
            payload["nbf"] = nbf
        payload = merge(payload, claims, omit)

        if kid is not None and self.keys.has(kid):
            selected = self.keys.get(kid)
        else:
            selected = self.keys.signing_key
        if key is None:
            alg = algorithm or selected.alg
            signing_material: Any = selected.private_key
            if alg.startswith("HS"):
                signing_material = selected.public_key_pem()
        else:
            alg = algorithm or ("HS256" if isinstance(key, bytes | str) else selected.alg)
            signing_material = key
        header = merge({"alg": alg, "typ": "JWT", "kid": kid or selected.kid}, headers)
        return encode_jws(header, payload, signing_material, alg)

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """Verify a token as this tenant would: a published kid, its algorithm, signature,
        ``iss``, ``exp``/``iat``; ``audience`` (when given) must be in ``aud``. Raises pyjwt
        errors or KeyError for an unknown kid."""
        return self.state.verify(token, audience)

    # -- configuration -----------------------------------------------------------------------

    def add_api(
        self, identifier: str, scopes: Iterable[str] = (), *, allow_dpop: bool = True
    ) -> ApiConfig:
        """Register (or replace) a resource server."""
        api = ApiConfig(identifier, tuple(scopes), allow_dpop)
        with self.state.lock:
            self.apis[identifier] = api
        return api

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        api: str | None = None,
        grants: Mapping[str, Iterable[str]] | None = None,
        obo_enabled: bool = True,
        auth_method: str = "any",
        public_key: Any = None,
    ) -> ClientConfig:
        """Register (or replace) a client. ``api`` makes it a Custom API client for that API;
        ``grants`` maps downstream audiences to granted scopes; a secret is made if omitted.
        ``public_key`` (RSA, 2048+ bits: object, PEM or JWK) lets it use ``private_key_jwt``."""
        if auth_method not in config.AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {config.AUTH_METHODS}")
        if public_key is not None:
            load_public_key(public_key)  # refuse what Auth0 refuses at registration
        client = ClientConfig(
            client_id,
            client_secret or config.new_secret(),
            api=api,
            grants=config.normalize_grants(grants),
            obo_enabled=obo_enabled,
            auth_method=auth_method,
            public_key=public_key,
        )
        with self.state.lock:
            self.clients[client_id] = client
        return client

    def add_connection(
        self,
        name: str,
        scopes: Iterable[str] = (),
        *,
        users: Iterable[str] | None = None,
        expires_in: int = 3600,
    ) -> ConnectionConfig:
        """Register a Token Vault connection; ``users`` limits the subjects that linked it."""
        connection = ConnectionConfig(
            name, tuple(scopes), frozenset(users) if users is not None else None, expires_in
        )
        with self.state.lock:
            self.connections[name] = connection
        return connection

    def add_exchange_profile(self, subject_token_type: str, handler: ProfileHandler) -> None:
        """A Custom Token Exchange profile: ``handler(form)`` returns the new token's claims
        (``sub`` required), or ``{"error": ..., "error_description": ..., "status": ...}``."""
        with self.state.lock:
            self.exchange_profiles[subject_token_type] = ExchangeProfile(
                subject_token_type, handler
            )

    # -- DPoP nonce --------------------------------------------------------------------------

    def require_dpop_nonce(self, required: bool = True) -> str | None:
        """Demand a server nonce in token-endpoint proofs; returns the current nonce."""
        if required:
            return self.state.new_dpop_nonce()
        self.state.dpop_nonce = None
        return None

    def rotate_dpop_nonce(self) -> str:
        return self.state.new_dpop_nonce()

    @property
    def dpop_nonce(self) -> str | None:
        return self.state.dpop_nonce

    # -- faults, counters, records -----------------------------------------------------------

    def inject_fault(
        self,
        endpoint: str,
        status: int | None = 500,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        close: bool = False,
        trickle: float = 0.0,
    ) -> None:
        """Make the next ``times`` requests to ``endpoint`` fail (``times=None``: until cleared).

        ``endpoint`` is ``"discovery"``, ``"jwks"``, ``"token"`` or a path. ``body`` may be a
        dict/list (JSON), bytes or str (sent as is); ``delay`` sleeps first (``status=None`` to
        answer normally after it); ``close=True`` drops the connection without an answer;
        ``trickle=N`` sends the answer (the injected one, or the normal one with
        ``status=None``) one byte every N seconds, like a tenant that keeps a client waiting
        without ever tripping a per-read timeout.
        """
        if endpoint not in ROUTES.values() and not endpoint.startswith("/"):
            raise ValueError(f"unknown endpoint {endpoint!r}; use a name or a path")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for always")
        if trickle < 0:
            raise ValueError("trickle must be a number of seconds, 0 for none")
        fault = Fault(status, body, dict(headers or {}), delay, times, close, trickle)
        self.state.faults.add(endpoint, fault)

    def clear_faults(self, endpoint: str | None = None) -> None:
        self.state.faults.clear(endpoint)

    def count(self, endpoint: str) -> int:
        """Requests received by ``"discovery"``, ``"jwks"``, ``"token"``, or a path."""
        return self.state.count(endpoint)

    @property
    def counts(self) -> dict[str, int]:
        return self.state.counts

    def reset_counts(self) -> None:
        """Zero the counters and forget the recorded token requests."""
        self.state.reset_counts()

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every request to ``/oauth/token`` so far (client secrets redacted), oldest first."""
        return self.state.token_requests

    @property
    def server_errors(self) -> list[BaseException]:
        """Exceptions the token endpoint raised (answered as 500 ``server_error``)."""
        return self.state.server_errors

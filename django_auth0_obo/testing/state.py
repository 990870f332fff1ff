"""``TenantState``: what the stand-in tenant knows and remembers, shared by its parts.

The HTTPS server (:mod:`~django_auth0_obo.testing.server`) and the token endpoint
(:mod:`~django_auth0_obo.testing.oauth_endpoint`) work on this object, never on the
:class:`~django_auth0_obo.testing.tenant.LocalTenant` façade users hold, so the façade can change
without breaking them and nothing imports back up the chain (state ← endpoint ← server ← tenant).

It holds the registry (APIs, clients, Token Vault connections, exchange profiles, tunables), the
key ring, the memory of DPoP proof ``jti`` values and the nonce demanded, the request counters,
the injected faults and the log of token requests. Every member here is public on purpose; the
lock guards the mutable collections that several server threads touch at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from django_auth0_obo.testing import config
from django_auth0_obo.testing.authorization_state import OAuthState
from django_auth0_obo.testing.client_assertions import AssertionJtis
from django_auth0_obo.testing.config import (
    GRANT_CLIENT_CREDENTIALS,
    GRANT_FEDERATED,
    GRANT_TOKEN_EXCHANGE,
    ApiConfig,
    ClientConfig,
    ConnectionConfig,
    ExchangeProfile,
)
from django_auth0_obo.testing.faults import FaultBook
from django_auth0_obo.testing.jws import encode_jws
from django_auth0_obo.testing.tenant_keys import KeyRing, SigningKey

#: How long a DPoP proof ``jti`` is remembered once the memory needs pruning, seconds.
JTI_MEMORY_SECONDS = 600
_JTI_MEMORY_LIMIT = 10_000

#: Auth0's documented limit on nested ``act`` levels an exchange may produce (five; one error
#: text in Auth0's guide says four). The app's ``MAX_DELEGATION_DEPTH`` defaults to the same.
DEFAULT_MAX_DELEGATION_DEPTH = 5


@dataclass(frozen=True)
class FederatedToken:
    """A Token Vault answer the tenant gave out, so a fake third-party API can check it."""

    connection: str
    sub: str
    login_hint: str | None
    scope: str


@dataclass
class TokenRequest:
    """What the token endpoint received (secrets redacted), and how it answered."""

    form: dict[str, str]
    headers: dict[str, str]
    grant_type: str | None = None
    client_id: str | None = None
    auth_method: str | None = None
    dpop_proof: str | None = None
    status: int | None = None
    error: str | None = None
    received_at: float = field(default_factory=time.time)

    @property
    def dpop(self) -> bool:
        """True when the request carried a ``DPoP`` header."""
        return self.dpop_proof is not None

    @property
    def audience(self) -> str | None:
        return self.form.get("audience")

    @property
    def scope(self) -> str | None:
        return self.form.get("scope")

    @property
    def subject_token(self) -> str | None:
        return self.form.get("subject_token")

    @property
    def forwarded_for(self) -> str | None:
        """The ``auth0-forwarded-for`` header (the end user's IP), when sent."""
        return self.headers.get("auth0-forwarded-for")


class TenantState:
    """The stand-in's shared state; :meth:`reset` restores what it was built with."""

    def __init__(
        self,
        *,
        default_audience: str,
        signing_key: SigningKey,
        client_secret: str,
        app_secret: str,
    ) -> None:
        self.lock = threading.RLock()
        self.faults = FaultBook()
        #: ``https://127.0.0.1:PORT`` while the server runs, else None.
        self.serving_at: str | None = None
        self._initial = (default_audience, signing_key, client_secret, app_secret)
        #: Bumped by every :meth:`reset`; a request remembers the one it began in, so an answer
        #: still pending from a previous test (a delayed one) is neither sent nor logged.
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        """Back to the initial registry, keys and tunables; forget faults, counters and logs."""
        default_audience, signing_key, client_secret, app_secret = self._initial
        with self.lock:
            self.generation += 1
            self.keys = KeyRing(signing_key)
            self.default_audience: str = default_audience
            self.apis: dict[str, ApiConfig] = config.default_apis()
            self.clients: dict[str, ClientConfig] = config.default_clients(
                client_secret, app_secret
            )
            self.connections: dict[str, ConnectionConfig] = config.default_connections()
            self.exchange_profiles: dict[str, ExchangeProfile] = {}
            self.max_delegation_depth: int = DEFAULT_MAX_DELEGATION_DEPTH
            self.exchange_token_lifetime: int = 3600
            self.jwks_max_age: int | None = None
            self.dpop_algorithms: tuple[str, ...] = ("ES256",)
            self.dpop_nonce: str | None = None
            self.federated_tokens: dict[str, FederatedToken] = {}
            #: The authorization server MCP clients log in with (``authorization_server``).
            self.oauth = OAuthState()
            self._seen_jtis: dict[str, float] = {}
            #: ``private_key_jwt`` assertion ids already used (replays are refused).
            self.assertion_jtis = AssertionJtis()
            self._counts: Counter[str] = Counter()
            self._path_counts: Counter[str] = Counter()
            self._token_requests: list[TokenRequest] = []
            self._server_errors: list[BaseException] = []
            self.faults.clear()

    def is_current(self, generation: int) -> bool:
        """False once :meth:`reset` ran after a request that began in ``generation``."""
        with self.lock:
            return generation == self.generation

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.serving_at is None:
            raise RuntimeError("the local tenant is not started")
        return self.serving_at

    @property
    def issuer(self) -> str:
        """``https://127.0.0.1:PORT/``, with Auth0's trailing slash."""
        return f"{self.base_url}/"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.base_url}/.well-known/jwks.json"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/oauth/token"

    # -- documents ---------------------------------------------------------------------------

    def discovery_document(self) -> dict[str, Any]:
        """The OpenID configuration, shaped like Auth0's."""
        base = self.base_url
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": self.token_endpoint,
            "device_authorization_endpoint": f"{base}/oauth/device/code",
            "userinfo_endpoint": f"{base}/userinfo",
            "mfa_challenge_endpoint": f"{base}/mfa/challenge",
            "jwks_uri": self.jwks_uri,
            "registration_endpoint": f"{base}/oidc/register",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "end_session_endpoint": f"{base}/oidc/logout",
            "scopes_supported": ["openid", "profile", "offline_access", "email"],
            "response_types_supported": [
                "code",
                "token",
                "id_token",
                "code token",
                "code id_token",
                "token id_token",
                "code token id_token",
            ],
            "code_challenge_methods_supported": ["S256", "plain"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "PS256"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                GRANT_CLIENT_CREDENTIALS,
                GRANT_TOKEN_EXCHANGE,
                GRANT_FEDERATED,
            ],
            "dpop_signing_alg_values_supported": list(self.dpop_algorithms),
            "claims_supported": [
                *("aud", "auth_time", "created_at", "email", "exp", "iat", "iss"),
                *("name", "nickname", "picture", "sub"),
            ],
            "request_uri_parameter_supported": False,
            "request_parameter_supported": False,
        }

    # -- tokens ------------------------------------------------------------------------------

    def issue(self, claims: Mapping[str, Any], lifetime: int) -> str:
        """Sign a token as the token endpoint does: this issuer, now, the current signing key."""
        now = int(time.time())
        payload = {"iss": self.issuer, **claims, "iat": now, "exp": now + lifetime}
        key = self.keys.signing_key
        header = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
        return encode_jws(header, payload, key.private_key, key.alg)

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """Verify a token as this tenant would: a published kid, its algorithm, signature,
        ``iss``, ``exp``/``iat``; ``audience`` (when given) must be in ``aud``. Raises pyjwt
        errors or KeyError for an unknown kid."""
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if not isinstance(kid, str) or not self.keys.is_published(kid):
            raise KeyError("unknown kid")
        key = self.keys.get(kid)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[key.alg],
            issuer=self.issuer,
            options={"require": ["iss", "sub", "exp", "iat"], "verify_aud": False},
        )
        if audience is not None:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if audience not in audiences:
                raise jwt.InvalidAudienceError("audience not accepted")
        return claims

    def issue_federated(self, connection: str, sub: str, login_hint: str | None) -> str:
        """An opaque third-party token from a Token Vault connection, remembered for checks."""
        token = f"fed-{secrets.token_urlsafe(32)}"
        scope = " ".join(self.connections[connection].scopes)
        with self.lock:
            self.federated_tokens[token] = FederatedToken(connection, sub, login_hint, scope)
        return token

    # -- DPoP --------------------------------------------------------------------------------

    def new_dpop_nonce(self) -> str:
        """Demand a fresh server nonce in token-endpoint proofs; returns it."""
        with self.lock:
            self.dpop_nonce = config.new_secret()[:22]
            return self.dpop_nonce

    def remember_jti(self, jti: str) -> bool:
        """Record a proof's jti; False when it was already seen (a replay)."""
        now = time.time()
        with self.lock:
            if jti in self._seen_jtis:
                return False
            if len(self._seen_jtis) > _JTI_MEMORY_LIMIT:
                cutoff = now - JTI_MEMORY_SECONDS
                self._seen_jtis = {k: t for k, t in self._seen_jtis.items() if t > cutoff}
            self._seen_jtis[jti] = now
            return True

    # -- counters and logs -------------------------------------------------------------------

    def count_request(self, name: str | None, path: str) -> None:
        """Count one request by endpoint name (when it has one) and by path."""
        with self.lock:
            if name is not None:
                self._counts[name] += 1
            self._path_counts[path] += 1

    def count(self, endpoint: str) -> int:
        """Requests received by ``"discovery"``, ``"jwks"``, ``"token"``, or a path."""
        with self.lock:
            if endpoint.startswith("/"):
                return self._path_counts[endpoint]
            return self._counts[endpoint]

    @property
    def counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self.lock:
            self._counts.clear()
            self._path_counts.clear()
            self._token_requests.clear()

    def record_token_request(self, record: TokenRequest) -> None:
        with self.lock:
            self._token_requests.append(record)

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every request to ``/oauth/token`` so far (client secrets redacted), oldest first."""
        with self.lock:
            return list(self._token_requests)

    def record_server_error(self, exc: BaseException) -> None:
        with self.lock:
            self._server_errors.append(exc)

    @property
    def server_errors(self) -> list[BaseException]:
        """Exceptions the token endpoint raised (answered as 500 ``server_error``)."""
        with self.lock:
            return list(self._server_errors)

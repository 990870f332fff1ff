"""``LocalResourceServer``: a downstream API over real HTTPS that accepts the stand-in's tokens.

What an API behind the on-behalf-of exchange does with the token it receives, so a test can call
it the way production code calls the real one: it verifies the token (the tenant's keys, issuer,
expiry, its own audience), enforces sender-constraining (a ``cnf.jkt`` token only with the DPoP
scheme and a proof with matching key, ``htm``, ``htu``, ``ath`` and an unused ``jti``), can demand
server nonces (``require_nonce``), can insist on bound tokens (``dpop_required``) and can revoke
the next tokens it sees (``revoke_next``) to exercise a client's refresh. Every request is recorded
without its token or proof. It has its own throwaway CA (``ca_bundle``), like a real API that is
not the tenant.

    with LocalResourceServer(tenant, "https://calendar-api.example.com") as api:
        requests.get(api.url("/events"), auth=OnBehalfOf(request.auth, api.audience),
                     verify=api.ca_bundle)
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt

from django_auth0_obo.testing.jwk_encoding import access_token_hash
from django_auth0_obo.testing.proofs import ProofError, check_proof
from django_auth0_obo.testing.server import Serving
from django_auth0_obo.testing.state import TenantState


class HasTenantState(Protocol):
    """A ``LocalTenant`` (whose tokens the resource server accepts), by what it offers."""

    state: TenantState


@dataclass(frozen=True)
class ResourceRequest:
    """One request the resource server answered (no token, no proof)."""

    method: str
    path: str
    scheme: str | None
    status: int
    error: str | None
    sub: str | None
    nonce: str | None
    forwarded_headers: dict[str, str]


class _Refusal(Exception):
    def __init__(self, error: str, description: str, scheme: str = "Bearer") -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.scheme = scheme


class LocalResourceServer:
    """An HTTPS resource server on 127.0.0.1 for ``audience``, trusting ``tenant``'s tokens."""

    def __init__(
        self,
        tenant: HasTenantState,
        audience: str,
        *,
        require_nonce: bool = False,
        dpop_required: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.state = tenant.state
        self.audience = audience
        self.require_nonce = require_nonce
        self.dpop_required = dpop_required
        self.host = host
        self.nonce = secrets.token_urlsafe(16)
        #: Hand out a new nonce after every ``use_dpop_nonce`` (a server whose nonces a client
        #: can never catch up with), to test that clients retry only once.
        self.rotate_nonce_on_demand = False
        self._revoke = 0
        self._jtis: set[str] = set()
        self._records: list[ResourceRequest] = []
        self._lock = threading.Lock()
        self._serving: Serving | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalResourceServer:
        serving = Serving.start(
            self.state, ("127.0.0.1", 0), name="auth0-local-api", handler=ResourceRequestHandler
        )
        serving.server.resource = self  # type: ignore[attr-defined]  # before its port is known
        self._serving = serving
        return self

    def stop(self) -> None:
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    def __enter__(self) -> LocalResourceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._running().port

    @property
    def ca_bundle(self) -> str:
        """Path of this API's CA certificate (``verify=`` for the downstream call)."""
        return str(self._running().tls.ca_cert)

    def _running(self) -> Serving:
        if self._serving is None:
            raise RuntimeError("the resource server is not started")
        return self._serving

    def url(self, path: str = "/") -> str:
        return f"https://{self.host}:{self.port}{path}"

    # -- behaviour ---------------------------------------------------------------------------

    def revoke_next(self, count: int = 1) -> None:
        """Answer 401 ``invalid_token`` to the next ``count`` otherwise valid tokens."""
        with self._lock:
            self._revoke = count

    def rotate_nonce(self) -> str:
        with self._lock:
            self.nonce = secrets.token_urlsafe(16)
            return self.nonce

    @property
    def requests(self) -> list[ResourceRequest]:
        with self._lock:
            return list(self._records)

    def handle(
        self, method: str, url: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request: ``(status, JSON body, headers)``; records it."""
        scheme: str | None = None
        sub: str | None = None
        nonce: str | None = None
        try:
            scheme, token = _credentials(headers.get("authorization"))
            try:
                claims = self.state.verify(token, audience=self.audience)
            except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
                raise _Refusal("invalid_token", "The access token is not valid here.") from exc
            sub = claims.get("sub")
            with self._lock:
                revoked = self._revoke > 0
                self._revoke -= 1 if revoked else 0
            if revoked:
                raise _Refusal("invalid_token", "The access token was revoked.", scheme)
            cnf = claims.get("cnf")
            jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
            if jkt is None:
                if self.dpop_required:
                    raise _Refusal("invalid_token", "A DPoP-bound token is required.", "DPoP")
                if scheme != "Bearer":
                    raise _Refusal("invalid_token", "An unbound token needs the Bearer scheme.")
            else:
                nonce = self._check_proof(scheme, method, url, token, jkt, headers.get("dpop"))
        except _Refusal as refusal:
            status = 400 if refusal.error == "invalid_request" else 401
            reply = {"error": refusal.error, "error_description": refusal.description}
            challenge = f'{refusal.scheme} error="{refusal.error}"'
            if refusal.scheme == "DPoP":
                challenge += ', algs="ES256"'
            out = {"WWW-Authenticate": challenge}
            if refusal.error == "use_dpop_nonce":
                out["DPoP-Nonce"] = self.nonce
                if self.rotate_nonce_on_demand:
                    self.rotate_nonce()
            self._record(method, url, scheme, status, refusal.error, sub, nonce, headers)
            return status, reply, out
        self._record(method, url, scheme, 200, None, sub, nonce, headers)
        body = {"sub": sub, "scheme": scheme, "act": claims.get("act"), "method": method}
        return 200, body, {}

    def _check_proof(
        self, scheme: str, method: str, url: str, token: str, jkt: str, proof: str | None
    ) -> str | None:
        if scheme != "DPoP":
            raise _Refusal("invalid_token", "A DPoP-bound token needs the DPoP scheme.", "DPoP")
        if not proof:
            raise _Refusal("invalid_dpop_proof", "A DPoP proof is required.", "DPoP")
        try:
            checked = check_proof(proof, method=method, url=url, algorithms=("ES256",))
        except ProofError as exc:
            raise _Refusal("invalid_dpop_proof", str(exc), "DPoP") from exc
        if checked.claims.get("ath") != access_token_hash(token):
            raise _Refusal("invalid_dpop_proof", "ath does not match the token.", "DPoP")
        if checked.jkt != jkt:
            raise _Refusal("invalid_dpop_proof", "The proof key is not the token's.", "DPoP")
        nonce = checked.claims.get("nonce")
        if self.require_nonce and nonce != self.nonce:
            raise _Refusal("use_dpop_nonce", "Resource server requires nonce.", "DPoP")
        with self._lock:
            if checked.claims["jti"] in self._jtis:
                raise _Refusal("invalid_dpop_proof", "DPoP proof replayed.", "DPoP")
            self._jtis.add(checked.claims["jti"])
        return nonce if isinstance(nonce, str) else None

    def _record(
        self,
        method: str,
        url: str,
        scheme: str | None,
        status: int,
        error: str | None,
        sub: str | None,
        nonce: str | None,
        headers: dict[str, str],
    ) -> None:
        kept = {k: v for k, v in headers.items() if k not in ("authorization", "dpop")}
        record = ResourceRequest(
            method, urlsplit(url).path, scheme, status, error, sub, nonce, kept
        )
        with self._lock:
            self._records.append(record)


def _credentials(header: str | None) -> tuple[str, str]:
    if not header:
        raise _Refusal("invalid_token", "No access token.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return "Bearer", token.strip()
    if scheme.lower() == "dpop":
        return "DPoP", token.strip()
    raise _Refusal("invalid_request", "Unsupported authorization scheme.")


class ResourceRequestHandler(BaseHTTPRequestHandler):
    """Every method and path: answered by :meth:`LocalResourceServer.handle`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        resource: LocalResourceServer = self.server.resource  # type: ignore[attr-defined]
        host = self.headers.get("Host") or f"{resource.host}:{resource.port}"
        url = f"https://{host}{self.path}"
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = resource.handle(self.command, url, headers)
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **extra}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

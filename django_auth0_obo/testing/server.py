"""The stand-in's HTTPS plumbing: a threading HTTP server that speaks TLS, and the router.

It serves a :class:`~django_auth0_obo.testing.state.TenantState` (documents, counters, faults)
and hands ``/oauth/token`` to :mod:`~django_auth0_obo.testing.oauth_endpoint`.

The TLS handshake runs in each connection's worker thread (not in ``accept``), so a client that
never finishes its handshake cannot stall the others. Open connections are tracked so ``stop()``
can cut keep-alive connections that would otherwise keep answering from a stopped tenant.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django_auth0_obo.testing import authorization_server
from django_auth0_obo.testing.certs import TLSFiles, generate_tls_files
from django_auth0_obo.testing.oauth_endpoint import handle_token_request, log_faulted_token_request
from django_auth0_obo.testing.state import TenantState

#: Endpoint names for :meth:`LocalTenant.count` and :meth:`LocalTenant.inject_fault`.
ROUTES = {
    "/.well-known/openid-configuration": "discovery",
    "/.well-known/jwks.json": "jwks",
    "/oauth/token": "token",
}
_METHODS = {"discovery": "GET", "jwks": "GET", "token": "POST"}
_ALL_METHODS = {**_METHODS, **authorization_server.METHODS}
_MAX_BODY = 1 << 20
_IDLE_TIMEOUT = 30.0


class TenantHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer + per-connection TLS + the tenant state it serves."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops SYNs under 50 concurrent clients, which then
    # retry a second later: keep the whole burst in the queue.
    request_queue_size = 256

    def __init__(
        self, address: tuple[str, int], state: TenantState, context: ssl.SSLContext
    ) -> None:
        super().__init__(address, TenantRequestHandler)
        self.state = state
        self.ssl_context = context
        #: Set by :meth:`stop`; injected delays end early when it is.
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_IDLE_TIMEOUT)
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add
        # ~40 ms to every keep-alive answer.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # e.g. a client that does not trust our CA: nothing to answer
        with self._open_lock:
            self._open.add(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (ssl.SSLError, OSError):
            pass  # the peer went away mid-request; nothing left to answer
        finally:
            with self._open_lock:
                self._open.discard(tls)
            tls.close()

    def stop(self) -> None:
        """Stop serving, cut open connections (keep-alive included) and close the socket."""
        self.stopping.set()
        self.shutdown()
        self.close_open_connections()
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: broken client connections are normal in fault tests."""

    def close_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue


@dataclass(frozen=True)
class Serving:
    """A :class:`TenantHTTPServer` with its own CA and key files, serving in a daemon thread:
    how the tenant and the resource servers run, started and stopped by the same code."""

    server: TenantHTTPServer
    thread: threading.Thread
    tmpdir: Path
    tls: TLSFiles

    @classmethod
    def start(
        cls,
        state: TenantState,
        address: tuple[str, int],
        *,
        name: str,
        handler: type[BaseHTTPRequestHandler] | None = None,
    ) -> Serving:
        """Write fresh TLS files, bind ``address`` (port 0: a free one) and serve."""
        tmpdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        tls = generate_tls_files(tmpdir)
        server = TenantHTTPServer(address, state, tls.server_context())
        if handler is not None:
            server.RequestHandlerClass = handler
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{name}:{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        return cls(server, thread, tmpdir, tls)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        """Stop serving, cut open connections and delete the CA and key files."""
        self.server.stop()
        self.thread.join(timeout=5)
        shutil.rmtree(self.tmpdir, ignore_errors=True)


class TenantRequestHandler(BaseHTTPRequestHandler):
    """Routes discovery, JWKS and the token endpoint; applies faults; counts every request."""

    protocol_version = "HTTP/1.1"
    server: TenantHTTPServer
    #: Seconds between the bytes of the current answer (a ``trickle`` fault), 0 for none.
    _trickle: float = 0.0

    def version_string(self) -> str:
        return "LocalAuth0Tenant/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        state = self.server.state
        generation = state.generation
        path = urlsplit(self.path).path or "/"
        name = ROUTES.get(path) or authorization_server.ROUTES.get(path)
        body = self._read_body()
        if body is None:
            return
        state.count_request(name, path)
        fault = state.faults.take([k for k in (name, path) if k])
        self._trickle = fault.trickle if fault is not None else 0.0
        if fault is not None:
            if fault.delay and self.server.stopping.wait(fault.delay):
                self.close_connection = True
                return
            if not state.is_current(generation):
                # The tenant was reset while this request waited (its client timed out and the
                # test moved on): answering would log it into the next test's token requests.
                self.close_connection = True
                return
            if fault.close:
                if name == "token":
                    log_faulted_token_request(state, _header_lists(self.headers), body, None)
                self.close_connection = True
                return
            if fault.status is not None:
                status, data, headers = fault.render()
                if name == "token":
                    log_faulted_token_request(state, _header_lists(self.headers), body, status)
                self._send(status, data, headers)
                return
        if name is None:
            self._send_json(404, {"error": "not_found", "error_description": "Not found."})
        elif method != _ALL_METHODS[name] and not (
            method == "HEAD" and _ALL_METHODS[name] == "GET"
        ):
            self._send_json(
                405,
                {"error": "method_not_allowed", "error_description": "Method not allowed."},
                {"Allow": _ALL_METHODS[name]},
            )
        elif name in authorization_server.METHODS:
            self._send(*authorization_server.handle(state, name, self.path, body))
        elif name == "discovery":
            self._send_json(200, state.discovery_document())
        elif name == "jwks":
            headers = {}
            if state.jwks_max_age is not None:
                headers["Cache-Control"] = f"public, max-age={int(state.jwks_max_age)}"
            self._send_json(200, state.keys.jwks(), headers)
        else:
            try:
                reply = handle_token_request(
                    state, _header_lists(self.headers), body, authorization_server.GRANT_HANDLERS
                )
                status, payload, headers = reply.status, reply.body, reply.headers
            except Exception as exc:  # a bug or a test hook that blew up: answer like Auth0 would
                state.record_server_error(exc)
                status, headers = 500, {}
                payload = {"error": "server_error", "error_description": "Internal error."}
            self._send_json(status, payload, headers)

    def _read_body(self) -> bytes | None:
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self._send_json(411, {"error": "invalid_request", "error_description": "Length."})
            self.close_connection = True
            return None
        try:
            length = int(length_header or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self._send_json(400, {"error": "invalid_request", "error_description": "Body."})
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self._send(status, data, {"Content-Type": "application/json", **(headers or {})})

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        if self.command == "HEAD":
            data = b""
        if self._trickle:
            self._send_trickling(status, data, headers)
            return
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_trickling(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        """The whole answer, status line included, one byte every ``_trickle`` seconds."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {status} {phrase}", *(f"{k}: {v}" for k, v in headers.items())]
        lines += [f"Content-Length: {len(data)}", "Connection: close"]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data
        for index in range(len(raw)):
            if self.server.stopping.wait(self._trickle):
                return
            self.wfile.write(raw[index : index + 1])


def _header_lists(raw_headers: Mapping[str, str] | Any) -> dict[str, list[str]]:
    """Request headers as lower-cased names mapped to every value sent under that name."""
    headers: dict[str, list[str]] = {}
    for name, value in raw_headers.items():
        headers.setdefault(name.lower(), []).append(value)
    return headers

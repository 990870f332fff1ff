"""Outbound HTTP to the tenant: one ``requests.Session`` per process, bounded and verified.

Every call gets ``TLS_CA_BUNDLE`` and a total deadline of ``HTTP_TIMEOUT`` seconds, and its answer
is read whole, up to a size cap, before :func:`tenant_request` returns. GETs retry once on a
dropped connection (urllib3's ``Retry``), inside the same deadline. Token-endpoint POSTs are not
retried here: the exchange client decides, because a POST may have been processed.

Why a deadline and not only ``timeout=``: requests' timeout bounds each socket operation, so a
tenant that trickles one byte every half second keeps a worker forever without tripping it. A
timer shuts down the call's sockets when the deadline passes, which ends any blocked read at once;
the call then raises :class:`DeadlineExceeded` (a ``requests.Timeout``). The TCP connect and TLS
handshake are bounded by the per-operation timeout only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from django_auth0_obo.conf import obo_settings

USER_AGENT = "django-auth0-obo"

#: Largest answer read from the tenant when the caller names no cap (bytes).
DEFAULT_MAX_BYTES = 1024 * 1024
_CHUNK = 16 * 1024
#: Most digits read in a ``Content-Length`` (an exabyte); a longer one is junk, not a length.
_MAX_LENGTH_DIGITS = 18

_local_pid: int | None = None
_session: requests.Session | None = None
_lock = threading.Lock()
_calls = threading.local()


class DeadlineExceeded(requests.Timeout):
    """The whole call took longer than ``HTTP_TIMEOUT`` seconds."""


class ResponseTooLarge(requests.RequestException):
    """The tenant's answer is larger than the caller's cap; it was not read to the end."""


class MalformedResponse(requests.RequestException):
    """The tenant's answer cannot be framed (a ``Content-Length`` that is not a number): RFC 9112
    §6.3 says to discard it, so it is not read."""


def ascii_integer(value: str, max_digits: int) -> int | None:
    """``value`` as an integer when it is 1 to ``max_digits`` ASCII digits, else None.

    Not ``str.isdigit`` alone: it also accepts ``"²"`` (a latin-1 header can carry it), which
    ``int`` refuses, and ``int`` refuses more than 4300 digits; both would escape as ValueError.
    """
    if not (value.isascii() and value.isdigit()) or len(value) > max_digits:
        return None
    return int(value)


class _Deadline:
    """Shuts down every socket a call uses once ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    deadline: _Deadline | None = getattr(_calls, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    """An HTTPS connection whose socket the current call's deadline can cut."""

    def connect(self) -> None:
        super().connect()
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection serving a new call
            _watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _TenantAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": HTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


def _build_session() -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=1, connect=1, read=1, status=0, allowed_methods=frozenset({"GET"}), backoff_factor=0.1
    )
    adapter = _TenantAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False
    return session


def get_session() -> requests.Session:
    """The process's session (rebuilt after ``fork`` so workers never share sockets)."""
    global _session, _local_pid
    pid = os.getpid()
    if _session is None or _local_pid != pid:
        with _lock:
            if _session is None or _local_pid != pid:
                _session = _build_session()
                _local_pid = pid
    return _session


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[_Deadline]:
    outer = getattr(_calls, "deadline", None)
    deadline = _Deadline(seconds)
    _calls.deadline = deadline
    try:
        yield deadline
    finally:
        _calls.deadline = outer
        deadline.cancel()


def tenant_request(
    method: str, url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, **kwargs: Any
) -> requests.Response:
    """Send a request to the tenant and read its answer, all within ``HTTP_TIMEOUT`` seconds.

    The returned response's body is already read (``.content``, ``.json()`` and
    ``iter_content`` work without touching the network). Raises :class:`DeadlineExceeded`,
    :class:`ResponseTooLarge` past ``max_bytes``, :class:`MalformedResponse`, or requests' own
    errors.
    """
    timeout = float(obo_settings.HTTP_TIMEOUT)
    kwargs.setdefault("timeout", timeout)
    kwargs.setdefault("verify", obo_settings.tls_verify)
    kwargs.setdefault("allow_redirects", False)
    kwargs["stream"] = True
    started = time.monotonic()
    with _deadline(timeout) as deadline:
        try:
            response = get_session().request(method, url, **kwargs)
            try:
                body = _read_capped(response, max_bytes)
            finally:
                response.close()
        except requests.RequestException as error:
            if deadline.expired:
                raise DeadlineExceeded(_late(url, started)) from error
            raise
        if deadline.expired:  # a close-delimited body cut short by the deadline
            raise DeadlineExceeded(_late(url, started))
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]
    return response


def _read_capped(response: requests.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    length = None if declared is None else ascii_integer(declared, _MAX_LENGTH_DIGITS)
    if declared is not None and length is None:
        raise MalformedResponse("The answer's Content-Length is not a number.")
    if length is not None and length > max_bytes:
        raise ResponseTooLarge(f"The answer declares {length} bytes, over {max_bytes}.")
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise ResponseTooLarge(f"The answer is larger than {max_bytes} bytes.")
    return bytes(body)


def _late(url: str, started: float) -> str:
    return f"No complete answer from {url} within {time.monotonic() - started:.1f} s."

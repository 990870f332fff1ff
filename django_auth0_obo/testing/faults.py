"""Injected failures: answers a real tenant gives on a bad day (5xx, 429, junk, slowness, drops)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_DEFAULT_ERRORS = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    404: "not_found",
    429: "too_many_requests",
    503: "temporarily_unavailable",
}


@dataclass
class Fault:
    """One injected behaviour. ``status=None`` only delays, then answers normally;
    ``close=True`` drops the connection without answering; ``trickle=N`` sends the answer (status
    line, headers and body) one byte every N seconds; ``times=None`` never runs out."""

    status: int | None = 500
    body: bytes | str | Mapping[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int | None = 1
    close: bool = False
    trickle: float = 0.0

    def render(self) -> tuple[int, bytes, dict[str, str]]:
        """``(status, body, headers)`` to send; JSON unless ``body`` is bytes or str."""
        status = self.status or 500
        headers = dict(self.headers)
        if isinstance(self.body, bytes | str):
            data = self.body.encode("utf-8") if isinstance(self.body, str) else self.body
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return status, data, headers
        payload = self.body
        if payload is None:
            code = _DEFAULT_ERRORS.get(status, "server_error" if status >= 500 else "error")
            payload = {"error": code, "error_description": "Injected fault."}
        headers.setdefault("Content-Type", "application/json")
        return status, json.dumps(payload).encode("utf-8"), headers


class FaultBook:
    """Queued faults per endpoint key (an endpoint name or a path); first queued, first used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {}

    def add(self, endpoint: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(endpoint, []).append(fault)

    def take(self, keys: Iterable[str]) -> Fault | None:
        """Consume one use of the first fault queued under any of ``keys``."""
        with self._lock:
            for key in keys:
                queue = self._faults.get(key)
                if not queue:
                    continue
                fault = queue[0]
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        queue.pop(0)
                return fault
            return None

    def clear(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    def pending(self) -> dict[str, int]:
        """How many faults are queued per endpoint key (for assertions)."""
        with self._lock:
            return {k: len(v) for k, v in self._faults.items() if v}

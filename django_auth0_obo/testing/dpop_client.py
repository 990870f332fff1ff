"""``DPoPClient``: DPoP requests through Django's or DRF's test client, nonce dance included.

A test of a DPoP-protected view then stays one line, whether or not the API demands server
nonces (``DPOP_NONCE``)::

    client = DPoPClient(APIClient(), dpop_key, token)
    response = client.get("/api/things")

Each request gets a fresh proof (``htm``, ``htu``, ``ath``; ``nonce`` once the API gave one).
A ``DPoP-Nonce`` on any answer is remembered for the next proof, and a 401 ``use_dpop_nonce`` is
retried once with the nonce it carried — what a well-behaved DPoP client does (RFC 9449 §9).
"""

from __future__ import annotations

from typing import Any

from django_auth0_obo.testing.proofs import DPoPKey

NONCE_HEADER = "DPoP-Nonce"


class DPoPClient:
    """Wraps a test client; ``get``/``post``/... send ``Authorization: DPoP`` and a proof."""

    def __init__(self, client: Any, key: DPoPKey, token: str, *, host: str = "testserver") -> None:
        self.client = client
        self.key = key
        self.token = token
        self.host = host
        #: The last nonce the API handed out (sent in the next proof).
        self.nonce: str | None = None
        #: How many requests were retried because the API asked for a (new) nonce.
        self.nonce_retries = 0

    def url(self, path: str, secure: bool = False) -> str:
        """The absolute URL Django will see for ``path`` (what ``htu`` must name)."""
        return f"{'https' if secure else 'http'}://{self.host}{path.split('?')[0]}"

    def request(self, method: str, path: str, data: Any = None, **extra: Any) -> Any:
        """Send ``method path`` with a fresh proof; retry once on ``use_dpop_nonce``."""
        response = self._send(method, path, data, extra)
        if response.status_code == 401 and _asks_for_nonce(response):
            given = response.headers.get(NONCE_HEADER)
            if given:
                self.nonce_retries += 1
                response = self._send(method, path, data, extra)
        return response

    def _send(self, method: str, path: str, data: Any, extra: dict[str, Any]) -> Any:
        url = self.url(path, bool(extra.get("secure")))
        proof = self.key.proof(method.upper(), url, access_token=self.token, nonce=self.nonce)
        headers = {"HTTP_AUTHORIZATION": f"DPoP {self.token}", "HTTP_DPOP": proof, **extra}
        if "HTTP_HOST" not in headers and self.host != "testserver":
            headers["HTTP_HOST"] = self.host
        send = getattr(self.client, method.lower())
        response = send(path, data, **headers) if data is not None else send(path, **headers)
        nonce = response.headers.get(NONCE_HEADER)
        if nonce:
            self.nonce = nonce
        return response

    def get(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.request("GET", path, data, **extra)

    def post(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.request("POST", path, data, **extra)

    def put(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.request("PUT", path, data, **extra)

    def patch(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.request("PATCH", path, data, **extra)

    def delete(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.request("DELETE", path, data, **extra)


def _asks_for_nonce(response: Any) -> bool:
    challenge = response.headers.get("WWW-Authenticate", "")
    return 'error="use_dpop_nonce"' in challenge

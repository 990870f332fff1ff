"""Outbound HTTP to the tenant: one ``requests.Session`` per process, bounded and verified.

Every call gets ``HTTP_TIMEOUT`` and ``TLS_CA_BUNDLE``; GETs retry once on a dropped connection
(urllib3's ``Retry``). Token-endpoint POSTs are not retried here: the exchange client decides,
because a POST may have been processed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from django_auth0_obo.conf import obo_settings

USER_AGENT = "django-auth0-obo"

_local_pid: int | None = None
_session: requests.Session | None = None
_lock = threading.Lock()


def _build_session() -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=1, connect=1, read=1, status=0, allowed_methods=frozenset({"GET"}), backoff_factor=0.1
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
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


def tenant_request(method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send a request to the tenant with the configured timeout and CA bundle."""
    kwargs.setdefault("timeout", obo_settings.HTTP_TIMEOUT)
    kwargs.setdefault("verify", obo_settings.tls_verify)
    kwargs.setdefault("allow_redirects", False)
    return get_session().request(method, url, **kwargs)

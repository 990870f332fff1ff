"""The URL a DPoP proof's ``htu`` must name, built on every DPoP request.

It is ``request.build_absolute_uri()`` without query and fragment, built directly from the same
parts: the scheme and host after Django's proxy settings, and the path escaped by Django's own
rule. The general method also parses the location it builds, joins dot segments, adds the query
and re-encodes it all as an IRI; here the result is ASCII already and ``dpop.normalize_htu``
removes dot segments.

Django's ``get_host`` reads four settings, runs a regex and walks ALLOWED_HOSTS on every call,
most of this URL's cost. So a host it has accepted is remembered, together with the
ALLOWED_HOSTS (and DEBUG) it was judged by, compared on every call: a known host then costs a
dict lookup, and any change to those settings, signalled or not, forgets every host. A host
Django refuses is never remembered and raises ``DisallowedHost`` each time, as ``get_host``
does. Request classes that bring their own ``get_host`` are always asked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.encoding import escape_uri_path

#: Accepted hosts remembered at most (several custom domains, ports); when full, it starts over.
MAX_HOSTS = 64
#: Longer paths are escaped every time, so the path memo stays small whatever clients send.
MAX_CACHED_PATH_LENGTH = 512

_accepted_hosts: dict[str, None] = {}
#: Held to forget the memo and to add to it (never on a hit), so a host judged under settings
#: that another thread has just found changed is not added after that thread's clear.
_memo_lock = threading.Lock()
#: What ``_accepted_hosts`` was judged by: (ALLOWED_HOSTS as a tuple, DEBUG when it matters).
_judged_by: list[Any] = [None]
#: Per request class: does it use Django's own ``get_host`` and ``_get_raw_host``?
_plain_classes: dict[type, bool] = {}
#: Django's host before the ALLOWED_HOSTS check (a private method, stable since Django 1.x);
#: were it gone, every request would take ``get_host`` as it is.
_RAW_HOST: Callable[[HttpRequest], str] | None = getattr(HttpRequest, "_get_raw_host", None)


def request_url(request: HttpRequest) -> str:
    """The request's absolute URL without query and fragment, as ``htu`` is compared with.
    Raises ``DisallowedHost`` for a host outside ALLOWED_HOSTS, as ``get_host`` does."""
    host = _accepted_host(request)
    path = request.path
    escaped = _escaped_path(path) if len(path) <= MAX_CACHED_PATH_LENGTH else escape_uri_path(path)
    return f"{request.scheme}://{host}{escaped}"


def _accepted_host(request: HttpRequest) -> str:
    cls = type(request)
    plain = _plain_classes.get(cls)
    if plain is None:
        plain = _plain_classes[cls] = (
            _RAW_HOST is not None
            and cls.get_host is HttpRequest.get_host
            and getattr(cls, "_get_raw_host", None) is _RAW_HOST
        )
    if not plain or _RAW_HOST is None:
        return request.get_host()
    allowed = settings.ALLOWED_HOSTS
    judged_by = (tuple(allowed), None if allowed else bool(settings.DEBUG))
    if judged_by != _judged_by[0]:
        with _memo_lock:
            _accepted_hosts.clear()
            _judged_by[0] = judged_by
    raw = _RAW_HOST(request)
    if raw in _accepted_hosts:
        return raw
    host: str = request.get_host()  # Django's whole check: raises DisallowedHost
    with _memo_lock:
        if host == raw and _judged_by[0] == judged_by:  # not judged by settings changed since
            if len(_accepted_hosts) >= MAX_HOSTS:
                _accepted_hosts.clear()
            _accepted_hosts[host] = None
    return host


@lru_cache(maxsize=1024)
def _escaped_path(path: str) -> str:
    """Django's ``escape_uri_path``: a pure function of the path, remembered."""
    return escape_uri_path(path)

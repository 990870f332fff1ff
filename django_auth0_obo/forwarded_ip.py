"""``auth0-forwarded-for``: tell the tenant which end user an exchange is made for.

Every exchange reaches Auth0 from this server's address, so Auth0's Suspicious IP Throttling
would count all users as one. With ``FORWARD_USER_IP`` the token-endpoint calls made while serving
a request carry the end user's IP in Auth0's ``auth0-forwarded-for`` header (Auth0 honours it for
confidential clients with "Trust Token Endpoint IP Header" on).

The IP is ``REMOTE_ADDR`` as Django sees it when the request is authenticated, i.e. after the
project's own proxy handling (a middleware that rewrites ``REMOTE_ADDR`` from a trusted
``X-Forwarded-For``); this module never reads forwarding headers itself, since only the project
knows which proxies to trust. The value lives in a context variable, so threads and asyncio tasks
each see their own request, and is cleared when the request finishes; an exchange made outside
any request (a worker, a management command) sends no header. Only a syntactically valid IP
address is ever sent: the raw ``REMOTE_ADDR`` is kept per request and parsed only when an
exchange asks for it (parsing it on every authenticated request cost more than the rest of the
step), so a request that makes no exchange never pays for it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.signals import request_finished

from django_auth0_obo.conf import obo_settings

HEADER = "auth0-forwarded-for"

#: The raw ``REMOTE_ADDR`` (any value); :func:`current_user_ip` validates it.
_user_ip: ContextVar[Any] = ContextVar("django_auth0_obo_user_ip", default=None)


def clean_ip(value: Any) -> str | None:
    """``value`` as a canonical IP address string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def remember_request(request: Any) -> None:
    """Note the end user's IP of the request being served (``REMOTE_ADDR``) for exchanges.

    Nothing is noted unless FORWARD_USER_IP is on: only :func:`forwarding_headers` reads it."""
    if not obo_settings.FORWARD_USER_IP:
        return
    meta = getattr(request, "META", None)
    _user_ip.set(meta.get("REMOTE_ADDR") if isinstance(meta, dict) else None)


def current_user_ip() -> str | None:
    """The IP remembered for the request being served (validated and canonical), or None."""
    return clean_ip(_user_ip.get())


@contextmanager
def user_ip(ip: str | None) -> Iterator[None]:
    """Exchanges inside the block forward ``ip`` (for code that is not a DRF view)."""
    token = _user_ip.set(clean_ip(ip))
    try:
        yield
    finally:
        _user_ip.reset(token)


def forwarding_headers() -> dict[str, str]:
    """``{"auth0-forwarded-for": ip}`` when forwarding is on and a request is being served."""
    if not obo_settings.FORWARD_USER_IP:
        return {}
    ip = current_user_ip()
    return {HEADER: ip} if ip else {}


def _forget(**kwargs: Any) -> None:
    _user_ip.set(None)


request_finished.connect(_forget, dispatch_uid="django_auth0_obo.forwarded_ip")

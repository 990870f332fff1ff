"""Helpers shared by the Bearer tests: reading challenges and proving nothing was written."""

from __future__ import annotations

import re
from typing import Any

from django_auth0_obo.models import DelegationEvent, ExchangedToken

_ERROR = re.compile(r'error="([^"]*)"')
_DESCRIPTION = re.compile(r'error_description="([^"]*)"')


def challenge_error(response: Any) -> str | None:
    """The ``error=`` code of the response's ``WWW-Authenticate`` header (None if absent)."""
    match = _ERROR.search(response.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else None


def challenge_description(response: Any) -> str | None:
    """The ``error_description=`` of the response's ``WWW-Authenticate`` header."""
    match = _DESCRIPTION.search(response.headers.get("WWW-Authenticate", ""))
    return match.group(1) if match else None


def nothing_written() -> bool:
    """No exchanged token cached and no audit row: a refused request leaves no trace."""
    return not ExchangedToken.objects.exists() and not DelegationEvent.objects.exists()


def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

"""Access-token verification (framework-free core). To be written: see verify_access_token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def verify_access_token(token: str, *, audiences: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the verified claims of ``token`` or raise InvalidToken / TenantUnavailable."""
    raise NotImplementedError

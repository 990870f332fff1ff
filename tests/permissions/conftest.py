"""Fixtures shared by the permission tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_auth0_obo import signals


@pytest.fixture
def denials() -> Iterator[list[dict[str, Any]]]:
    """What ``actor_denied`` is sent with during the test, in order."""
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    signals.actor_denied.connect(receiver)
    yield seen
    signals.actor_denied.disconnect(receiver)

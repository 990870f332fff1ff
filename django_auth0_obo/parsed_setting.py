"""``ParsedSetting``: a setting's parsed form, built once and forgotten when ``AUTH0_OBO`` changes.

Keys in the settings (``DPOP_CLIENT_KEY``, ``CLIENT_ASSERTION_KEY``) cost a parse on every use
if read raw, so each module keeps its parsed form in one of these. The rule lives here once:
parse on first use under a lock (so concurrent first users parse once), keep the result until the
settings reload (``conf.on_reload``), keep nothing when the parse raises (the next use raises the
same, naming the setting).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django_auth0_obo import conf

T = TypeVar("T")


class ParsedSetting(Generic[T]):
    """``AUTH0_OBO[name]`` passed through ``parse``, cached per settings generation."""

    def __init__(self, name: str, parse: Callable[[Any], T]) -> None:
        self.name = name
        self._parse = parse
        #: ``(value,)`` once parsed; one attribute, so a lock-free read sees all or nothing.
        self._slot: tuple[T] | None = None
        self._lock = threading.Lock()
        conf.on_reload(self.forget)

    def get(self) -> T:
        """The parsed value (raises what ``parse`` raises, caching nothing)."""
        slot = self._slot
        if slot is None:
            with self._lock:
                slot = self._slot
                if slot is None:
                    slot = (self._parse(getattr(conf.obo_settings, self.name)),)
                    self._slot = slot
        return slot[0]

    def forget(self) -> None:
        """Drop the parsed value; the next :meth:`get` reads the settings again."""
        self._slot = None

"""The browser test runs where a browser is: it skips without Chromium, unless the run demands
it (``REQUIRE_BROWSER=1``, set by CI), in which case a missing browser fails the test."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def browser_required() -> bool:
    return os.environ.get("REQUIRE_BROWSER", "") not in ("", "0")


@pytest.fixture(autouse=True)
def chromium_available() -> None:
    """Skip (or, under REQUIRE_BROWSER=1, fail) when Chromium is not installed."""
    if os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM):
        return
    message = (
        f"Chromium not found at {CHROMIUM} (set CHROMIUM_PATH, or run scripts/install-browser)"
    )
    if browser_required():
        pytest.fail(message + "; REQUIRE_BROWSER=1 demands the browser test.")
    pytest.skip(message)

"""Debian's Chromium driven by Playwright (not a test module): how the browser tests start it,
where they put their screenshots, and how they log in to the admin."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHANGELIST = "/admin/django_auth0_obo/delegationevent/"
OVERVIEW = f"{CHANGELIST}overview/"
ADMIN_PASSWORD = "correct horse battery"


def log_in(page: Any, base_url: str, next_path: str) -> None:
    """Log in as ``admin`` (created by the test) through the admin's form, landing on
    ``next_path``."""
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_path}")


@contextmanager
def chromium_page(*, width: int = 1400, timeout_ms: float | None = None) -> Iterator[Any]:
    """A page of a headless Chromium, closed with its browser when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            if timeout_ms is not None:
                page.set_default_timeout(timeout_ms)
                page.set_default_navigation_timeout(timeout_ms)
            yield page
        finally:
            browser.close()

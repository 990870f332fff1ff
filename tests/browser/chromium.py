"""Debian's Chromium driven by Playwright (not a test module): how the browser tests start it,
where they put their screenshots, and how they log in to the admin."""

from __future__ import annotations

import os
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

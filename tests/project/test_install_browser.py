"""``scripts/install-browser`` on a machine that cannot install Chromium: ``make test`` says so
and goes on (the browser test then skips), unless ``REQUIRE_BROWSER=1`` (CI) makes it an error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-browser"


def run_without_chromium_or_apt(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """PATH holds only ``id``: no chromium, no apt-get, no sudo."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    identity = shutil.which("id")
    assert identity is not None
    (bin_dir / "id").symlink_to(identity)
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={"PATH": str(bin_dir), "CHROMIUM_PATH": "chromium-not-here", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_apt_get_it_says_the_browser_test_is_skipped_and_succeeds(tmp_path: Path) -> None:
    result = run_without_chromium_or_apt(tmp_path)

    assert result.returncode == 0
    assert "apt-get is not available" in result.stderr
    assert "SKIPPED" in result.stderr


def test_under_require_browser_it_fails(tmp_path: Path) -> None:
    result = run_without_chromium_or_apt(tmp_path, REQUIRE_BROWSER="1")

    assert result.returncode == 1
    assert "REQUIRE_BROWSER=1" in result.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs Chromium installed")
def test_with_chromium_installed_it_does_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={**os.environ, "CHROMIUM_PATH": "/usr/bin/chromium"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")

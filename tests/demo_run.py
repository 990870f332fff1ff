"""The demo, run once per test session (not a test module): ``scripts/demo.py --once`` against
the local tenant stand-in, keeping its SQLite database, and the audit rows it wrote dumped as a
Django fixture. ``tests/project/test_demo.py`` reads its output; the browser test loads its rows
and draws the delegation overview from them."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DemoRun:
    result: subprocess.CompletedProcess[str]
    #: The demo's SQLite database, copied when it finished (``--keep-db``).
    database: Path
    #: Its ``DelegationEvent`` rows as a fixture for ``loaddata`` (empty path when the demo failed).
    audit_rows: Path


def run_demo(workdir: Path) -> DemoRun:
    database, fixture = workdir / "demo.sqlite3", workdir / "demo-audit-rows.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--once", "--keep-db", str(database)],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode == 0 and database.exists():
        dump_audit_rows(database, fixture)
    return DemoRun(result, database, fixture)


def dump_audit_rows(database: Path, fixture: Path) -> None:
    """``manage.py dumpdata`` of the demo's audit rows, through the example project's settings
    pointed at the demo's database: the rows as the demo wrote them, every field typed."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "CACHE_URL": "locmemcache://",
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "dumpdata",
            "django_auth0_obo.DelegationEvent",
            "--indent",
            "1",
            "--output",
            str(fixture),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )

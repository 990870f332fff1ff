"""``REQUIRE_SERVICES=1`` turns a service that does not answer into a failed run, never a skip;
without it, a machine with no PostgreSQL or Redis runs the suite on the embedded parts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parents[2]
ACT_TESTS = "tests/verify/test_act.py"


def closed_port() -> int:
    """A loopback port nothing listens on: bound for the rest of this process and never
    listened on, so connecting is refused and no other socket (a test's server, another
    process) can take it meanwhile, as it could a port that was bound and released."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _held.append(sock)
    return int(sock.getsockname()[1])


_held: list[socket.socket] = []


def run_pytest_with(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ACT_TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


CLOSED = closed_port()
SCENARIOS = {
    "database on a closed port": (
        {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{CLOSED}/x",
            "CACHE_URL": "filecache:///tmp/x",
        },
        "DATABASE_URL",
    ),
    "redis on a closed port": (
        {"DATABASE_URL": "sqlite:///x.sqlite3", "CACHE_URL": f"redis://127.0.0.1:{CLOSED}/0"},
        "CACHE_URL",
    ),
    "no URLs at all": ({}, "names no shared server"),
}


@pytest.mark.parametrize(("env", "named"), list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_a_required_service_that_does_not_answer_fails_the_run(
    env: dict[str, str], named: str
) -> None:
    completed = run_pytest_with({"REQUIRE_SERVICES": "1", **env})

    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    assert "Required services are not available" in output
    assert named in output
    assert " passed" not in output  # stopped before any test ran


def test_without_services_the_suite_runs_on_the_embedded_parts() -> None:
    completed = run_pytest_with({"REQUIRE_SERVICES": "0"})

    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert " passed" in completed.stdout


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        ({}, 0),
        ({"CACHE_URL": "locmemcache://", "DATABASE_URL": "sqlite:///db.sqlite3"}, 0),
        ({"CACHE_URL": f"redis://127.0.0.1:{CLOSED}/0"}, 0),  # not required: tests fail alone
        ({"REQUIRE_SERVICES": "1", "CACHE_URL": "filecache:///tmp/x"}, 1),
    ],
)
def test_only_a_required_run_reports_problems(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problems: int
) -> None:
    for name in ("DATABASE_URL", "CACHE_URL", "REQUIRE_SERVICES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert len(services.unreachable_services()) == problems


def test_a_password_never_appears_in_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_SERVICES", "1")
    monkeypatch.setenv("DATABASE_URL", f"postgres://u:s3cret-pw@127.0.0.1:{CLOSED}/x")
    monkeypatch.setenv("CACHE_URL", "filecache:///tmp/x")

    [problem] = services.unreachable_services()

    assert "s3cret-pw" not in problem
    assert "u:***@" in problem

"""The official MCP TypeScript SDK's discovery against our metadata and challenges.

This is the client that refused 0.1's configuration ("Protected resource https://mcp.example.com
does not match expected http://…/mcp/calendar"). Runs when ``node`` and ``npm`` are installed;
skipped (saying why) when they are not or when ``npm install`` fails (no registry access), unless
the run demands it (``REQUIRE_NODE=1``, set by CI), in which case either fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from django.db import connection

from django_auth0_obo.testing import LocalTenant
from tests.mcp_support import configure_mcp
from tests.uvicorn_support import bind, serve

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_DIR = ROOT / "tests" / "ts"


def node_required() -> bool:
    return os.environ.get("REQUIRE_NODE", "") not in ("", "0")


#: How long ``npm install`` may take before the test counts the registry as unreachable.
NPM_INSTALL_SECONDS = 300


def skip_or_fail(message: str) -> NoReturn:
    """Skip, or under ``REQUIRE_NODE=1`` fail: CI must not lose this test silently."""
    if node_required():
        pytest.fail(f"{message}; REQUIRE_NODE=1 demands the TypeScript SDK test.")
    pytest.skip(message)


@pytest.fixture(scope="session")
def ts_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the TypeScript SDK installed and ``discovery.mjs``."""
    if not shutil.which("node") or not shutil.which("npm"):
        skip_or_fail("node/npm are not installed")
    directory = tmp_path_factory.mktemp("ts-sdk")
    for name in ("package.json", "discovery.mjs"):
        shutil.copy(SCRIPT_DIR / name, directory / name)
    try:
        installed = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:  # offline, npm retries the registry until the deadline
        skip_or_fail(f"npm install did not finish in {NPM_INSTALL_SECONDS} s")
    if installed.returncode != 0:
        skip_or_fail(f"npm install failed: {installed.stderr.strip()[-300:]}")
    return directory


@pytest.fixture(params=["verifier", "protect"])
def mcp_url(request: Any, auth0_tenant: LocalTenant, settings: Any) -> Iterator[str]:
    from testproject.mcp_server import build_application

    sock = bind()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    configure_mcp(auth0_tenant, settings, resource)
    with serve(build_application(protected=request.param == "protect"), sock, lifespan="on"):
        yield resource
    connection.close()


def test_the_typescript_sdk_accepts_our_discovery(
    ts_sdk: Path, mcp_url: str, auth0_tenant: LocalTenant
) -> None:
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": auth0_tenant.ca_bundle}
    run = subprocess.run(
        ["node", "discovery.mjs", mcp_url],
        cwd=ts_sdk,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    origin = mcp_url.removesuffix("/mcp")
    assert found["status"] == 401
    assert found["resourceMetadataUrl"] == f"{origin}/.well-known/oauth-protected-resource/mcp"
    assert found["resource"] == mcp_url
    assert found["selectedResource"] == mcp_url
    assert found["authorizationEndpoint"] == f"{auth0_tenant.base_url}/authorize"
    assert found["registrationEndpoint"] == f"{auth0_tenant.base_url}/oidc/register"
    assert "S256" in found["codeChallengeMethods"]


# -- the switch itself: a machine without node ------------------------------------------------


def run_sdk_test_without_node(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The SDK test above, in a pytest whose PATH holds no ``node`` and no ``npm``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    environment = {
        k: v for k, v in os.environ.items() if k not in ("REQUIRE_NODE", "REQUIRE_SERVICES")
    }
    environment.update(
        PATH=str(bin_dir),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CACHE_URL="locmemcache://",
        **env,
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            f"{__file__}::test_the_typescript_sdk_accepts_our_discovery",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_node_the_sdk_test_skips_saying_why(tmp_path: Path) -> None:
    result = run_sdk_test_without_node(tmp_path)

    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 skipped" in result.stdout
    assert "node/npm are not installed" in result.stdout


def test_under_require_node_a_machine_without_node_fails_the_run(tmp_path: Path) -> None:
    result = run_sdk_test_without_node(tmp_path, REQUIRE_NODE="1")

    assert result.returncode == 1, result.stdout[-2000:]
    assert "skipped" not in result.stdout
    assert "REQUIRE_NODE=1 demands the TypeScript SDK test" in result.stdout

"""Every ```python block of README.md runs here, so the README cannot drift from the code.

How a block runs is declared by an HTML comment (invisible on GitHub and PyPI) on the last
non-blank line before its opening fence::

    <!-- readme-test: MODE ARGS -->
    ```python
    ...
    ```

MODE is one of:

``settings``
    A fragment of ``settings.py``, run on its own: it defines upper-case settings and imports what
    it uses. Checked as settings: ``AUTH0_OBO`` passes the app's system checks without an error,
    every dotted path in ``REST_FRAMEWORK`` imports, every app named in ``INSTALLED_APPS`` is
    installed (a ``# ...`` comment stands for the user's own). Its settings (``INSTALLED_APPS``
    excepted) then configure the project every other block runs in: the example project
    (``testproject``) with the README laid over it (``tests/readme/settings.py``).
``urls``
    A fragment of ``urls.py`` defining ``urlpatterns``; its routes are part of that project.
``views PATH=Name ...``
    A views module, importable as ``readme_views`` by later blocks. Each ``PATH=Name`` mounts the
    view class ``Name`` at ``PATH`` (no leading slash). Every mounted view must answer a caller
    without credentials with 401 and a challenge.
``pytest``
    A test module, run by pytest in a fresh process (pytest-django and this app's plugin, as a
    user has them) in that project, against the stand-in tenant. It must hold at least one test,
    and all must pass.
``run`` — also the mode of a block with no directive
    Executed in that project with the stand-in running, ``AUTH0_OBO`` pointed at it (the
    ``auth0_tenant`` fixture) and a database. Given names, which the block may use without
    defining: ``access_token`` (a user's token for the first ``AUDIENCE``, scope ``mcp:read``)
    and ``auth0_tenant`` (the :class:`~django_auth0_obo.testing.LocalTenant`). Every other name
    it must define or import.
``skip REASON``
    Not executed; the reason is required (e.g. the block needs a real tenant or a separate
    server process). Prefer a mode that runs.

A block added later with no directive runs as ``run``: if it cannot run as is, give it a directive
rather than skipping this test. An unknown mode fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import ERROR
from django.urls import URLPattern, URLResolver, resolve
from django.utils.module_loading import import_string
from rest_framework.views import APIView

from django_auth0_obo import conf
from django_auth0_obo.checks import check_settings
from django_auth0_obo.testing import LocalTenant
from tests.readme import blocks

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = blocks.readme_blocks()


def of_mode(mode: str) -> list[Any]:
    return [pytest.param(block, id=block.name) for block in BLOCKS if block.mode == mode]


@pytest.fixture
def readme_project(settings: Any) -> None:
    """This test's settings are the example project with the README's settings laid over it."""
    for name, value in blocks.readme_overrides(settings.INSTALLED_APPS).items():
        setattr(settings, name, value)
    settings.ROOT_URLCONF = "tests.readme.urls"


@pytest.fixture
def readme_tenant(readme_project: None, request: pytest.FixtureRequest) -> LocalTenant:
    """The stand-in, with the README's AUTH0_OBO pointed at it by the ``auth0_tenant`` fixture."""
    return request.getfixturevalue("auth0_tenant")


# -- the conventions themselves ----------------------------------------------------------------


def test_the_readme_has_python_blocks_of_every_kind_it_documents() -> None:
    modes = {block.mode for block in BLOCKS}
    assert {"settings", "urls", "views", "pytest", "run"} <= modes


@pytest.mark.parametrize("block", [pytest.param(b, id=b.name) for b in BLOCKS])
def test_every_block_declares_a_known_mode(block: blocks.Block) -> None:
    assert block.mode in blocks.MODES, f"{block.name}: unknown readme-test mode"
    if block.mode == "skip":
        assert block.args, f"{block.name}: a skipped block must say why"
    if block.mode == "views":
        assert block.args, f"{block.name}: a views block mounts its views (PATH=Name)"
        assert all("=" in arg for arg in block.args), block.args


def test_the_parser_reads_directives_and_defaults_to_run() -> None:
    text = (
        "intro\n\n```python\nx = 1\n```\n\n<!-- readme-test: skip needs a real tenant -->\n\n"
        "```python\ny = 2\n```\n```sh\nmake test\n```\n"
    )

    first, second = blocks.parse(text)

    assert (first.mode, first.args, first.source, first.line) == ("run", (), "x = 1\n", 3)
    assert (second.mode, second.args) == ("skip", ("needs", "a", "real", "tenant"))


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", of_mode("settings"))
def test_a_settings_block_is_valid_settings(block: blocks.Block, settings: Any) -> None:
    namespace = blocks.execute(block)
    defined = {k for k, v in namespace.items() if not k.startswith("__") and not _is_module(v)}
    assert all(name.isupper() for name in defined), f"not settings: {defined}"

    for app in namespace.get("INSTALLED_APPS", []):
        assert app in settings.INSTALLED_APPS, app
    for value in _dotted_paths(namespace.get("REST_FRAMEWORK", {})):
        import_string(value)
    if "AUTH0_OBO" in namespace:
        settings.AUTH0_OBO = namespace["AUTH0_OBO"]
        errors = [m for m in check_settings() if m.level >= ERROR]
        assert errors == []


def _is_module(value: Any) -> bool:
    return type(value).__name__ == "module"


def _dotted_paths(rest_framework: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for value in rest_framework.values():
        for item in [value] if isinstance(value, str) else value:
            if isinstance(item, str) and "." in item:
                found.append(item)
    return found


# -- urls and views ----------------------------------------------------------------------------


@pytest.mark.parametrize("block", of_mode("urls"))
def test_a_urls_block_defines_urlpatterns(block: blocks.Block) -> None:
    patterns = blocks.execute(block)["urlpatterns"]

    assert patterns
    assert all(isinstance(p, URLPattern | URLResolver) for p in patterns)


def test_the_readme_project_serves_the_protected_resource_metadata(
    readme_tenant: LocalTenant, client: Any
) -> None:
    assert resolve("/.well-known/oauth-protected-resource")
    response = client.get("/.well-known/oauth-protected-resource")

    assert response.status_code == 200
    assert response.json()["resource"] == "https://mcp.example.com"


@pytest.mark.parametrize(("path", "name"), blocks.mounted_views())
def test_a_readme_view_answers_a_caller_without_credentials_with_401(
    readme_tenant: LocalTenant, client: Any, path: str, name: str
) -> None:
    view = getattr(blocks.views_module(), name)
    assert issubclass(view, APIView)
    method = "post" if hasattr(view, "post") else "get"

    response = getattr(client, method)(f"/{path}")

    assert response.status_code == 401, response.content
    assert "Bearer" in response.headers["WWW-Authenticate"]


@pytest.mark.django_db(transaction=True)
def test_the_readme_mcp_tool_calls_the_downstream_api_on_the_users_behalf(
    readme_tenant: LocalTenant, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Views example end to end: tool → exchange → the calendar view, over real HTTP."""
    import requests

    module = blocks.views_module()
    monkeypatch.setattr(module, "CALENDAR_URL", f"{live_server.url}/api/calendar/events")
    token = readme_tenant.mint(sub="auth0|alice", scope="mcp:read")

    response = requests.post(
        f"{live_server.url}/mcp/calendar", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"user": "auth0|alice", "acted_by": "mcp-server-client"}
    assert readme_tenant.count("token") == 1


# -- pytest and run blocks ---------------------------------------------------------------------


@pytest.mark.parametrize("block", of_mode("pytest"))
def test_a_pytest_block_passes_in_a_users_project(block: blocks.Block, tmp_path: Path) -> None:
    module = tmp_path / f"test_readme_block_{block.line}.py"
    module.write_text(block.source)
    env = {k: v for k, v in os.environ.items() if k not in ("REQUIRE_SERVICES",)}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.readme.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        # Its own database and cache: never the parent run's test database.
        DATABASE_URL=f"sqlite:///{tmp_path / 'readme.sqlite3'}",
        CACHE_URL="locmemcache://",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{block.name}\n{output[-4000:]}"
    assert " passed" in completed.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("block", of_mode("run"))
def test_a_run_block_runs_in_the_configured_project(
    block: blocks.Block, readme_tenant: LocalTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    token = readme_tenant.mint(sub="auth0|alice", scope="mcp:read")
    namespace = {"__name__": f"readme_block_{block.line}"}
    namespace.update(access_token=token, auth0_tenant=readme_tenant)

    blocks.execute(block, namespace)

    assert token not in capsys.readouterr().out  # a README never shows printing a token


def test_every_image_the_readme_shows_is_in_the_repository() -> None:
    """The README's pictures (the delegation overview's screenshot) are committed PNGs."""
    text = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    assert "docs/delegation-overview.png" in images
    for image in images:
        path = ROOT / image
        assert path.is_file(), image
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


def test_the_settings_table_lists_every_setting_and_check() -> None:
    """The README's settings table names every ``AUTH0_OBO`` key (and nothing else), and its
    list of system checks names every error id the checks can raise."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Settings (`AUTH0_OBO`)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    listed = {
        name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }
    assert listed == set(conf.DEFAULTS)

    sources = "".join(
        (ROOT / "django_auth0_obo" / name).read_text() for name in ("checks.py", "view_checks.py")
    )
    raised = {
        int(n)
        for n in re.findall(r"_error\([^()]*?(?:\([^()]*\)[^()]*?)*,\s*(\d+)\s*[,)]", sources, re.S)
    }
    raised |= {int(n) for n in re.findall(r'id="auth0_obo\.E(\d{3})"', sources)}
    documented = {int(n) for n in re.findall(r"`(?:auth0_obo\.)?E(\d{3})`", section)}
    assert raised
    assert raised <= documented, sorted(raised - documented)

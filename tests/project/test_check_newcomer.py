"""``scripts/check-newcomer`` turns the README into a new project's files; these are its parts
that need no network (CI runs the whole script: ``make check-newcomer`` in ``.ci/run``)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import types
from pathlib import Path

import pytest

from tests.readme import blocks

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check-newcomer"
#: What ``django-admin startproject`` writes into INSTALLED_APPS.
STARTPROJECT_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]


def load_script() -> types.ModuleType:
    loader = importlib.machinery.SourceFileLoader("check_newcomer", str(SCRIPT))
    spec = importlib.util.spec_from_loader("check_newcomer", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


script = load_script()
README_BLOCKS = blocks.readme_blocks()


def test_a_readme_list_is_added_to_the_projects_list_and_nothing_else_changes() -> None:
    source = 'X = 1\n\nAPPS = [\n    # ... yours\n    "a",\n]  # trailing\nAPPS_2 = ["b"]\n'

    extended = script.extend_list(source, "APPS")

    assert extended == source.replace("APPS = [", "APPS += [", 1)
    namespace = {"APPS": ["mine"]}
    exec(extended, namespace)
    assert namespace["APPS"] == ["mine", "a"]
    assert namespace["APPS_2"] == ["b"]


def test_the_readme_settings_extend_a_startproject_settings_module() -> None:
    namespace: dict[str, object] = {"INSTALLED_APPS": list(STARTPROJECT_APPS)}

    exec(script.settings_addition(README_BLOCKS), namespace)

    assert namespace["INSTALLED_APPS"] == [*STARTPROJECT_APPS, "rest_framework", "django_auth0_obo"]
    assert "Auth0Authentication" in str(namespace["REST_FRAMEWORK"])
    assert "AUTH0_OBO" in namespace


def test_the_readme_urls_mount_every_view_its_directives_name() -> None:
    addition = script.urls_addition(README_BLOCKS, "mysite")
    compile(addition, "urls.py", "exec")

    for route, name in blocks.mounted_views():
        assert f'path("{route}", views.{name}.as_view())' in addition
    assert 'include("django_auth0_obo.urls")' in addition
    assert ("mcp/calendar", script.TOOL_VIEW) in blocks.mounted_views()


def test_views_py_is_the_readme_views_blocks_verbatim() -> None:
    source = script.views_source(README_BLOCKS)

    for block in blocks.of_mode("views"):
        assert block.source in source


def test_the_install_section_names_migrate_and_the_check_command() -> None:
    section = script.install_section(blocks.README.read_text())

    assert script.manage_commands(section) == ["migrate", "auth0_obo_check"]


def test_an_install_section_without_migrate_fails_the_check() -> None:
    with pytest.raises(script.Failed, match="migrate"):
        script.manage_commands("Then `python manage.py auth0_obo_check`.")

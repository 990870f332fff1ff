"""The stand-in's internal layout: parts depend on ``TenantState``, never on the façade."""

from __future__ import annotations

import ast
from pathlib import Path

import django_auth0_obo
from django_auth0_obo import testing

PACKAGE = Path(testing.__file__).parent
PREFIX = "django_auth0_obo.testing."
#: Modules that may import the ``LocalTenant`` façade: the entry points users touch.
FACADE_USERS = {"__init__", "__main__", "pytest_plugin", "testcase"}


def _imports(module: str) -> set[str]:
    """Stand-in modules ``module`` imports, ``TYPE_CHECKING`` blocks included."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PREFIX):
                found.add(node.module.removeprefix(PREFIX))
            elif node.module == "django_auth0_obo.testing":
                found.update(alias.name for alias in node.names)
    return found & _modules()


def _modules() -> set[str]:
    return {path.stem for path in PACKAGE.glob("*.py")}


def test_only_the_entry_points_import_the_local_tenant_facade() -> None:
    importers = {m for m in _modules() if "tenant" in _imports(m)}
    assert importers <= FACADE_USERS


def test_the_stand_in_modules_import_each_other_without_a_cycle() -> None:
    graph = {m: _imports(m) for m in _modules() - {"__init__"}}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_no_stand_in_module_shares_a_name_with_an_app_module() -> None:
    app = {path.stem for path in Path(django_auth0_obo.__file__).parent.glob("*.py")}
    assert _modules() & app == {"__init__"}


def test_server_and_endpoint_touch_no_private_member_of_the_state() -> None:
    for module in ("server", "oauth_endpoint"):
        tree = ast.parse((PACKAGE / f"{module}.py").read_text())
        private = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"state", "tenant"}
            and node.attr.startswith("_")
        }
        assert not private, f"{module} uses {sorted(private)}"

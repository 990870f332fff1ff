"""Every ```python block of README.md, with how it runs (``<!-- readme-test: MODE ARGS -->``).

The conventions are documented at the top of ``tests/project/test_readme.py``; this module only
parses the README and turns its settings, URL and view blocks into a project.
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
MODES = ("settings", "urls", "views", "pytest", "run", "skip")
VIEWS_MODULE = "readme_views"

_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(?P<mode>\w+)(?P<args>[^>]*?)\s*-->\s*$")
_FENCE = re.compile(r"^```python\s*$")


@dataclass(frozen=True)
class Block:
    """One Python block: where it is, how it runs, its source."""

    line: int  # 1-based line of the opening fence
    mode: str
    args: tuple[str, ...]
    source: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line}:{self.mode}"

    def compile(self) -> types.CodeType:
        # Pad with blank lines so tracebacks point at the README's own line numbers.
        return compile("\n" * self.line + self.source, str(README), "exec")


def parse(text: str) -> list[Block]:
    """The ```python blocks of ``text``; a directive must be the last non-blank line before."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if not _FENCE.match(lines[index]):
            index += 1
            continue
        mode, args = "run", ()
        previous = index - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        directive = _DIRECTIVE.match(lines[previous]) if previous >= 0 else None
        if directive:
            mode, args = directive["mode"], tuple(directive["args"].split())
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        blocks.append(Block(index + 1, mode, args, "\n".join(lines[index + 1 : end]) + "\n"))
        index = end + 1
    return blocks


def readme_blocks() -> list[Block]:
    return parse(README.read_text())


def of_mode(mode: str) -> list[Block]:
    return [block for block in readme_blocks() if block.mode == mode]


def execute(block: Block, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``block`` in ``namespace`` (fresh by default: a block defines every name it uses)."""
    namespace = {"__name__": f"readme_block_{block.line}"} if namespace is None else namespace
    exec(block.compile(), namespace)
    return namespace


def settings_from_readme() -> dict[str, Any]:
    """The settings the README's settings blocks define (upper-case names only)."""
    found: dict[str, Any] = {}
    for block in of_mode("settings"):
        namespace = execute(block)
        found.update({name: value for name, value in namespace.items() if name.isupper()})
    return found


def readme_overrides(installed_apps: list[str]) -> dict[str, Any]:
    """The settings the README changes in a project that has ``installed_apps``.

    ``INSTALLED_APPS`` stays the project's (the README lists the two apps to add; the project
    must have them, with Django's own); every other setting the README names replaces the
    project's.
    """
    overrides = settings_from_readme()
    apps = overrides.pop("INSTALLED_APPS", [])
    missing = [app for app in apps if isinstance(app, str) and app not in installed_apps]
    assert not missing, f"the README installs apps the test project lacks: {missing}"
    return overrides


def views_module() -> types.ModuleType:
    """The README's views block as an importable module (``readme_views``)."""
    module = sys.modules.get(VIEWS_MODULE)
    if module is None:
        module = types.ModuleType(VIEWS_MODULE)
        module.__file__ = str(README)
        for block in of_mode("views"):
            execute(block, module.__dict__)
        sys.modules[VIEWS_MODULE] = module
    return module


def mounted_views() -> list[tuple[str, str]]:
    """``(path, view name)`` for each ``path=Name`` argument of the views blocks."""
    mounted = []
    for block in of_mode("views"):
        for arg in block.args:
            path, _, name = arg.partition("=")
            mounted.append((path, name))
    return mounted


def urlpatterns() -> list[Any]:
    """The README's URL blocks plus its views at the paths their directive names."""
    from django.urls import path

    patterns: list[Any] = []
    for block in of_mode("urls"):
        patterns.extend(execute(block)["urlpatterns"])
    module = views_module()
    for route, name in mounted_views():
        patterns.append(path(route, getattr(module, name).as_view()))
    return patterns

"""The version matrix, one command: ``make matrix`` (or ``nox``).

Python 3.11, 3.12 and 3.13 by Django 5.2 LTS and the newest 6.x (Django 6 needs Python 3.12+, so
3.11 runs 5.2 only), each with the newest Django REST framework. To keep its cost small (CI runs
it after the two full runs) the matrix runs the suite without the tests marked slow, the browser
test, the demo and the other end-to-end tests that start processes or servers (the main CI runs
have them), with fewer hypothesis examples.

The test dependencies are the ``test`` extra of ``pyproject.toml`` minus the browser driver and
the linter, so the list lives in one place.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

#: Django series under test: the LTS and the newest feature release.
DJANGO = {"5.2": "Django~=5.2.0", "6.x": "Django>=6.1,<7"}
PYTHONS = ["3.11", "3.12", "3.13"]
#: Left out of the matrix runs: the tests marked slow, and (by name, wherever their files live)
#: the browser test, the demo, the fuzzers and the end-to-end tests that start other processes or
#: servers (gunicorn, uvicorn, worker processes, the MCP and TypeScript clients, the README's
#: commands). They exercise this package's code no differently on another Python or Django; the
#: main CI runs have every one of them.
FAST = [
    "-m",
    "not slow",
    "-k",
    " and ".join(
        f"not {name}"
        for name in (
            "browser",
            "demo",
            "fuzz",
            "test_dpop_replay_processes",
            "test_exchange_processes",
            "across_processes",
            "four_processes",
            "gunicorn",
            "uvicorn",
            "outage",
            "typescript",
            "end_to_end",
            "readme",
            "install_browser",
            "100000_rows",
        )
    ),
]
#: Hypothesis examples per property in the matrix (the main runs use the default, 150).
EXAMPLES = "10"
#: Printed first, so a run's log says what it tested.
VERSIONS = (
    "import django, rest_framework, sys;"
    "print('Python', sys.version.split()[0], 'Django', django.__version__,"
    " 'DRF', rest_framework.__version__)"
)
NOT_FOR_THE_MATRIX = (
    "playwright",
    "ruff",
    "nox",
    "mypy",
    "django-stubs",
    "djangorestframework-stubs",
)


def test_requirements() -> list[str]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    return [r for r in extras["test"] if not r.startswith(NOT_FOR_THE_MATRIX)]


#: Every supported pair; Django 6 needs Python 3.12 or newer.
MATRIX = [(python, django) for python in PYTHONS for django in DJANGO]
MATRIX.remove(("3.11", "6.x"))


@nox.session
@nox.parametrize(("python", "django"), MATRIX)
def tests(session: nox.Session, django: str) -> None:
    session.install(DJANGO[django], "djangorestframework", "-e", ".", *test_requirements())
    session.run("python", "-c", VERSIONS)
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        *FAST,
        *session.posargs,
        env={"HYPOTHESIS_MAX_EXAMPLES": EXAMPLES},
    )


@nox.session(python=PYTHONS[0])
def package(session: nox.Session) -> None:
    """Build the sdist and wheel; check the licence is in both and the test suite in neither."""
    import tarfile
    import zipfile

    session.install("build")
    out = Path(session.create_tmp()) / "dist"
    session.run("python", "-m", "build", "--outdir", str(out), ".")
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    with tarfile.open(sdist) as archive:
        sdist_files = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = archive.namelist()
    assert "LICENSE" in sdist_files, sdist_files
    assert any(name.endswith("licenses/LICENSE") for name in wheel_files), wheel_files
    assert not [n for n in sdist_files if n.startswith(("tests/", "testproject/"))], sdist_files
    assert "django_auth0_obo/py.typed" in wheel_files
    session.log(
        f"sdist: {len(sdist_files)} files, wheel: {len(wheel_files)} files, LICENSE in both"
    )

"""Shared fixtures. The local tenant fixtures (``auth0_tenant``, ``dpop_key``) come from the
app's own pytest plugin, ``django_auth0_obo.testing.pytest_plugin``, as they would for a user."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """``scripts/demo.py --once``, run once for every test that reads it (see tests/demo_run.py)."""
    from tests.demo_run import run_demo

    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _no_audit_rows_carried_between_tests():
    """Audit rows one test left buffered (a refused write) must not be written in the next."""
    from django_auth0_obo import audit_buffer

    audit_buffer.buffer.background = False  # no writer thread racing a test's transaction
    audit_buffer.buffer.discard()
    yield
    audit_buffer.buffer.discard()


@pytest.fixture(autouse=True)
def _no_connection_left_on_the_commit_thread():
    """Writes made from inside a test's own transaction run on the app's commit thread, whose
    connection would otherwise outlive the test database (PostgreSQL refuses to drop it)."""
    yield
    from django_auth0_obo import transactions

    transactions.close_connections()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under ``REQUIRE_SERVICES=1`` (CI), stop before any test when a service does not answer."""
    from tests.services import unreachable_services

    problems = unreachable_services()
    if problems:
        pytest.exit(
            "Required services are not available:\n  " + "\n  ".join(problems),
            returncode=pytest.ExitCode.TESTS_FAILED,
        )

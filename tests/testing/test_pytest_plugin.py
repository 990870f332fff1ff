"""The pytest plugin users get: fixtures that point Django at a fresh-state local tenant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django_auth0_obo.testing import DPoPKey, LocalTenant


def test_auth0_tenant_points_auth0_obo_at_the_tenant(auth0_tenant: LocalTenant) -> None:
    from django.conf import settings

    assert settings.AUTH0_OBO["DOMAIN"] == auth0_tenant.domain
    assert settings.AUTH0_OBO["AUDIT_SYNC"] is True  # a test sees its audit rows at once
    assert settings.AUTH0_OBO["TLS_CA_BUNDLE"] == auth0_tenant.ca_bundle
    assert settings.AUTH0_OBO["CLIENT_ID"] == auth0_tenant.client_id
    assert settings.AUTH0_OBO["CLIENT_SECRET"] == auth0_tenant.client_secret
    # the project's own keys are kept (testproject's AUDIENCE and SCOPES_SUPPORTED)
    assert settings.AUTH0_OBO["SCOPES_SUPPORTED"] == ["calendar:read", "calendar:write"]


def test_state_one_test_leaves_behind_is_gone_in_the_next() -> None:
    """The two tests of ``plugin_state_pair.py`` in one session, in that order: collected here,
    the second would pass or fail by whether the first happened to run just before it."""
    pair = Path(__file__).with_name("plugin_state_pair.py")
    names = ("test_state_left_behind_by_one_test", "test_is_gone_in_the_next")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *(f"{pair}::{name}" for name in names)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout


def test_one_server_serves_the_session(
    auth0_tenant: LocalTenant, auth0_tenant_server: LocalTenant
) -> None:
    assert auth0_tenant is auth0_tenant_server
    assert auth0_tenant.started


def test_dpop_key_is_a_fresh_es256_key(dpop_key: DPoPKey) -> None:
    assert dpop_key.alg == "ES256"
    assert dpop_key.public_jwk["crv"] == "P-256"


def test_the_plugin_imports_without_django_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    script = (
        "import sys\n"
        "import django_auth0_obo.testing.pytest_plugin\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "assert 'django_auth0_obo.testing.tenant' not in sys.modules\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr

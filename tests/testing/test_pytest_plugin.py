"""The pytest plugin users get: fixtures that point Django at a fresh-state local tenant."""

from __future__ import annotations

import os
import subprocess
import sys

from django_auth0_obo.testing import DPoPKey, LocalTenant

_CACHE_KEY = "django-auth0-obo-testing-plugin-probe"


def test_auth0_tenant_points_auth0_obo_at_the_tenant(auth0_tenant: LocalTenant) -> None:
    from django.conf import settings

    assert settings.AUTH0_OBO["DOMAIN"] == auth0_tenant.domain
    assert settings.AUTH0_OBO["AUDIT_SYNC"] is True  # a test sees its audit rows at once
    assert settings.AUTH0_OBO["TLS_CA_BUNDLE"] == auth0_tenant.ca_bundle
    assert settings.AUTH0_OBO["CLIENT_ID"] == auth0_tenant.client_id
    assert settings.AUTH0_OBO["CLIENT_SECRET"] == auth0_tenant.client_secret
    # the project's own keys are kept (testproject's AUDIENCE and SCOPES_SUPPORTED)
    assert settings.AUTH0_OBO["SCOPES_SUPPORTED"] == ["calendar:read", "calendar:write"]


def test_state_left_behind_by_one_test(auth0_tenant: LocalTenant) -> None:
    from django.core.cache import cache

    from django_auth0_obo import keys

    cache.set(_CACHE_KEY, "not ours")
    keys.get_keyset(auth0_tenant.issuer)
    assert cache.get_many(keys.shared_cache_keys(auth0_tenant.issuer)) != {}
    auth0_tenant.rotate()
    auth0_tenant.inject_fault("jwks", status=500, times=None)
    auth0_tenant.require_dpop_nonce()


def test_is_gone_in_the_next(auth0_tenant: LocalTenant) -> None:
    from django.core.cache import cache

    from django_auth0_obo import keys

    assert cache.get_many(keys.shared_cache_keys(auth0_tenant.issuer)) == {}
    assert cache.get(_CACHE_KEY) == "not ours", "entries the app did not write must survive"
    cache.delete(_CACHE_KEY)
    assert len(auth0_tenant.jwks()["keys"]) == 1
    assert auth0_tenant.dpop_nonce is None
    assert auth0_tenant.count("jwks") == 0
    keys.get_keyset(auth0_tenant.issuer)
    assert auth0_tenant.count("jwks") == 1, "the previous test's keys were not forgotten"


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

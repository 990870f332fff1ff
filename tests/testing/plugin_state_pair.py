"""Two tests that must run in this order in one session (not collected by name: run by
``test_pytest_plugin.py``): what one test leaves in the tenant and the app's caches is gone in
the next, and cache entries the app did not write survive."""

from __future__ import annotations

from django_auth0_obo.testing import LocalTenant

_CACHE_KEY = "django-auth0-obo-testing-plugin-probe"


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

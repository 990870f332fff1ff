"""pytest fixtures for the local tenant (registered as the ``auth0_obo`` pytest11 plugin).

pytest loads this module in every project that installs the app, so it imports nothing heavy and
nothing from Django at import time; the fixtures import what they need when used.

* ``auth0_tenant_server`` (session): one running :class:`LocalTenant`.
* ``auth0_tenant`` (function): that tenant, reset, with ``settings.AUTH0_OBO`` pointed at it
  (pytest-django's ``settings`` fixture; ``AUDIT_SYNC`` on, see ``LocalTenant.django_settings``);
  what the app cached about the tenant (discovery, keys,
  refetch cooldown, verified tokens) is forgotten before and after. Other cache entries are left
  alone, so a shared Redis used by the project's tests is never flushed.
* ``dpop_key`` (function): a fresh ES256 :class:`DPoPKey`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django_auth0_obo.testing.proofs import DPoPKey
    from django_auth0_obo.testing.tenant import LocalTenant


@pytest.fixture(scope="session")
def auth0_tenant_server() -> Iterator[LocalTenant]:
    """One local tenant for the whole session; use ``auth0_tenant`` in tests."""
    from django_auth0_obo.testing.tenant import LocalTenant

    with LocalTenant() as tenant:
        yield tenant


@pytest.fixture
def auth0_tenant(auth0_tenant_server: LocalTenant, settings: Any) -> Iterator[LocalTenant]:
    """The session tenant in its initial state, with ``AUTH0_OBO`` pointing at it."""
    tenant = auth0_tenant_server
    tenant.reset()
    settings.AUTH0_OBO = {**tenant.django_settings()}
    _forget_tenant(tenant)
    try:
        yield tenant
    finally:
        _forget_tenant(tenant)
        tenant.reset()


@pytest.fixture
def dpop_key() -> DPoPKey:
    """A fresh ES256 DPoP key pair."""
    from django_auth0_obo.testing.proofs import DPoPKey

    return DPoPKey.generate("ES256")


def _forget_tenant(tenant: LocalTenant) -> None:
    """Drop what the app cached about this tenant so nothing leaks between tests."""
    from django_auth0_obo import keys, token_cache, tokens

    keys.forget_issuer(tenant.issuer)
    tokens.clear_memo()
    token_cache.memo.clear()

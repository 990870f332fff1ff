"""pytest fixtures for the local tenant (registered as the ``auth0_obo`` pytest11 plugin).

pytest loads this module in every project that installs the app, so it imports nothing heavy and
nothing from Django at import time; the fixtures import what they need when used.

* ``auth0_tenant_server`` (session): one running :class:`LocalTenant`.
* ``auth0_tenant`` (function): that tenant, reset, with the project's ``settings.AUTH0_OBO``
  pointed at it (pytest-django's ``settings`` fixture): the project's keys are kept (``DPOP_MODE``,
  ``AUDIENCE``, ``AUDIT``...), only ``DOMAIN``/``DOMAINS``, ``TLS_CA_BUNDLE`` and, when the project
  sets none, the client credentials change (see :func:`~django_auth0_obo.testing.testcase.
  tenant_settings`). What the app cached about the tenant (discovery, keys, refetch cooldown,
  verified tokens) is forgotten before and after. Other cache entries are left alone, so a shared
  Redis used by the project's tests is never flushed. It needs no database itself; a test whose
  view writes audit rows needs ``@pytest.mark.django_db`` as usual. ``AUDIT_SYNC`` is on unless
  the project sets it, so a test sees its audit rows as soon as a request returns.
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
    """The session tenant in its initial state, with the project's ``AUTH0_OBO`` pointing at it."""
    from django_auth0_obo.testing.testcase import forget_tenant, tenant_settings

    tenant = auth0_tenant_server
    tenant.reset()
    settings.AUTH0_OBO = tenant_settings(tenant, getattr(settings, "AUTH0_OBO", None))
    forget_tenant(tenant)
    try:
        yield tenant
    finally:
        forget_tenant(tenant)
        tenant.reset()


@pytest.fixture
def dpop_key() -> DPoPKey:
    """A fresh ES256 DPoP key pair."""
    from django_auth0_obo.testing.proofs import DPoPKey

    return DPoPKey.generate("ES256")

"""Fixtures for testing the stand-in itself: no Django needed, one server for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from django_auth0_obo.testing import LocalTenant


@pytest.fixture
def tenant(auth0_tenant_server: LocalTenant) -> Iterator[LocalTenant]:
    """The session's local tenant, in its initial state."""
    auth0_tenant_server.reset()
    yield auth0_tenant_server
    auth0_tenant_server.reset()


@pytest.fixture
def http(tenant: LocalTenant) -> Iterator[requests.Session]:
    """A requests session that trusts the tenant's CA.

    ``trust_env`` is off because ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` in the environment
    would otherwise override ``session.verify`` (a requests quirk).
    """
    with requests.Session() as session:
        session.trust_env = False
        session.verify = tenant.ca_bundle
        yield session

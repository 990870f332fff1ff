"""``mcp.protect`` with DPOP_NONCE = True: refusals and answers hand DPoP clients a nonce, as the
DRF path's middleware does (one rule: ``dpop_nonce.header_for``). Over the real ASGI app."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from django_auth0_obo import dpop_nonce
from django_auth0_obo.testing import DPoPKey, LocalTenant
from tests.asgi.test_mcp_protect import HOST, RESOURCE, call

pytestmark = pytest.mark.django_db(transaction=True)

URL = "https://api.example.com/mcp"


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> Any:
    settings.ALLOWED_HOSTS = [HOST]
    settings.AUTH0_OBO = auth0_tenant.django_settings(
        audience=[RESOURCE], RESOURCE=RESOURCE, DPOP_NONCE=True
    )
    yield auth0_tenant
    connection.close()


def _dpop(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def test_a_proof_without_a_nonce_is_refused_with_a_nonce_to_retry_with(
    tenant: LocalTenant, dpop_key: DPoPKey
) -> None:
    token = tenant.mint(audience=RESOURCE, scope="mcp:read", cnf_jkt=dpop_key.jkt)

    first = call("POST", "/mcp", **_dpop(token, dpop_key.proof("POST", URL, token)))

    assert first.status_code == 401
    assert 'error="use_dpop_nonce"' in first.headers["WWW-Authenticate"]
    nonce = first.headers["DPoP-Nonce"]
    assert dpop_nonce.is_valid(nonce)

    retry = call("POST", "/mcp", **_dpop(token, dpop_key.proof("POST", URL, token, nonce=nonce)))

    assert retry.status_code == 200, retry.text
    assert retry.text == "auth0|user123"
    assert dpop_nonce.is_valid(retry.headers["DPoP-Nonce"])  # the app's answer carries one too


@pytest.mark.parametrize(
    ("why", "scope", "status"),
    [("allowed", "mcp:read", 200), ("missing scope", "other", 403)],
)
def test_every_answer_to_a_dpop_request_carries_a_nonce(
    tenant: LocalTenant, dpop_key: DPoPKey, why: str, scope: str, status: int
) -> None:
    token = tenant.mint(audience=RESOURCE, scope=scope, cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("POST", URL, token, nonce=dpop_nonce.issue())

    response = call("POST", "/mcp", **_dpop(token, proof))

    assert response.status_code == status, why
    assert dpop_nonce.is_valid(response.headers["DPoP-Nonce"]), why
    assert len(response.headers.get_list("DPoP-Nonce")) == 1, why


def test_an_anonymous_401_already_offers_a_nonce(tenant: LocalTenant) -> None:
    response = call("POST", "/mcp")

    assert response.status_code == 401
    assert dpop_nonce.is_valid(response.headers["DPoP-Nonce"])


def test_bearer_answers_get_no_nonce(tenant: LocalTenant) -> None:
    token = tenant.mint(audience=RESOURCE, scope="mcp:read")

    response = call("POST", "/mcp", Authorization=f"Bearer {token}")

    assert response.status_code == 200
    assert "DPoP-Nonce" not in response.headers


def test_off_by_default_no_nonce_is_sent(
    tenant: LocalTenant, dpop_key: DPoPKey, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_NONCE": False}
    token = tenant.mint(audience=RESOURCE, scope="mcp:read", cnf_jkt=dpop_key.jkt)

    refused = call("POST", "/mcp")
    allowed = call("POST", "/mcp", **_dpop(token, dpop_key.proof("POST", URL, token)))

    assert refused.status_code == 401
    assert allowed.status_code == 200, allowed.text
    assert "DPoP-Nonce" not in refused.headers
    assert "DPoP-Nonce" not in allowed.headers

"""``protect`` and ``Auth0TokenVerifier`` on their own (ASGI in-process, no server): what passes
through, what is answered, and that tools see the caller's token only inside a request."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from django.db import connection

from django_auth0_obo.mcp import Auth0AccessToken, Auth0TokenVerifier, get_verified_token, protect
from django_auth0_obo.testing import LocalTenant

pytestmark = pytest.mark.django_db(transaction=True)

RESOURCE = "https://api.example.com/mcp"


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> Any:
    settings.AUTH0_OBO = auth0_tenant.django_settings(
        audience=[RESOURCE], RESOURCE=RESOURCE, SCOPES_SUPPORTED=["mcp:read"], RESOURCE_NAME="Cal"
    )
    yield auth0_tenant
    connection.close()


async def inner_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the verified subject, or 'anonymous' when there is none."""
    if scope["type"] == "lifespan":
        return
    try:
        body = get_verified_token().sub.encode()
    except LookupError:
        body = b"anonymous"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def call(method: str, path: str, **headers: str) -> httpx.Response:
    app = protect(inner_app, required_scopes=["mcp:read"])

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as c:
            return await c.request(method, path, headers=headers)

    return asyncio.run(go())


def test_a_valid_token_reaches_the_app_and_the_tool_sees_it(tenant: LocalTenant) -> None:
    token = tenant.mint(audience=RESOURCE, scope="mcp:read")
    response = call("POST", "/mcp", Authorization=f"Bearer {token}")
    assert response.status_code == 200
    assert response.text == "auth0|user123"


def test_the_wrapper_serves_the_metadata_of_its_resource(tenant: LocalTenant) -> None:
    response = call("GET", "/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    assert response.json()["resource"] == RESOURCE
    assert response.json()["resource_name"] == "Cal"
    assert response.headers["access-control-allow-origin"] == "*"


def test_cors_preflights_pass_through_without_credentials(tenant: LocalTenant) -> None:
    assert call("OPTIONS", "/mcp").text == "anonymous"


@pytest.mark.parametrize(
    ("why", "headers", "status", "code"),
    [
        ("no credentials", {}, 401, None),
        ("garbage token", {"Authorization": "Bearer x.y.z"}, 401, "invalid_token"),
        ("two Authorization headers joined", {"Authorization": "Bearer a, Bearer b"}, 400, None),
        ("DPoP without proof", {"Authorization": "DPoP abc"}, 400, "invalid_request"),
    ],
)
def test_bad_credentials_get_the_full_challenge(
    tenant: LocalTenant, why: str, headers: dict[str, str], status: int, code: str | None
) -> None:
    response = call("POST", "/mcp", **headers)
    assert response.status_code == status, why
    challenge = response.headers["WWW-Authenticate"]
    assert 'scope="mcp:read"' in challenge, why
    expected = (
        'resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp"'
    )
    assert expected in challenge, why
    if code is None and status == 401:
        assert "error=" not in challenge, why
    elif code is not None:
        assert f'error="{code}"' in challenge, why
    assert response.json()["error"], why


def test_an_unreachable_tenant_is_503_not_401(tenant: LocalTenant) -> None:
    token = tenant.mint(audience=RESOURCE, scope="mcp:read")
    tenant.inject_fault("discovery", status=500, times=None)
    response = call("POST", "/mcp", Authorization=f"Bearer {token}")
    assert response.status_code == 503
    assert "Retry-After" in response.headers


def test_get_verified_token_outside_a_request_refuses() -> None:
    with pytest.raises(LookupError):
        get_verified_token()


def test_the_sdk_native_verifier_returns_the_sdks_access_token(tenant: LocalTenant) -> None:
    token = tenant.mint(audience=RESOURCE, scope="mcp:read", act={"sub": "agent"})
    verifier = Auth0TokenVerifier()
    access = asyncio.run(verifier.verify_token(token))
    assert isinstance(access, Auth0AccessToken)
    assert access.subject == "auth0|user123"
    assert access.scopes == ["mcp:read"]
    assert access.resource == RESOURCE
    assert access.verified is not None
    assert access.verified.current_actor == "agent"
    assert "verified" not in access.model_dump()
    assert asyncio.run(verifier.verify_token("not-a-token")) is None
    other = tenant.mint(audience="https://elsewhere.example", scope="mcp:read")
    assert asyncio.run(verifier.verify_token(other)) is None

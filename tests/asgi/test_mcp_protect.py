"""``protect`` and ``Auth0TokenVerifier`` on their own (ASGI in-process, no server): what passes
through, what is answered, and that tools see the caller's token only inside a request."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from django.db import connection

from django_auth0_obo.mcp import Auth0AccessToken, Auth0TokenVerifier, get_verified_token, protect
from django_auth0_obo.testing import DPoPKey, LocalTenant

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "api.example.com"
RESOURCE = f"https://{HOST}/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> Any:
    settings.ALLOWED_HOSTS = [HOST]  # protect() refuses other hosts, as Django does
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


def call_asgi(scope: dict[str, Any], *incoming: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs ``protect`` once on a raw ASGI ``scope`` (what httpx cannot send); returns what it
    sent. Raises AssertionError if the wrapped app is reached."""

    async def unreachable(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"the app was reached by a {scope['type']} scope")

    queue = list(incoming)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    async def serve() -> None:
        await protect(unreachable, required_scopes=["mcp:read"])(scope, receive, send)

    asyncio.run(serve())
    return sent


def test_a_websocket_handshake_is_refused_even_with_a_valid_token(tenant: LocalTenant) -> None:
    token = tenant.mint(audience=RESOURCE, scope="mcp:read")
    scope = {
        "type": "websocket",
        "scheme": "wss",
        "path": "/mcp",
        "root_path": "",
        "headers": [(b"host", HOST.encode()), (b"authorization", f"Bearer {token}".encode())],
    }
    sent = call_asgi(scope, {"type": "websocket.connect"})
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_a_websocket_that_leaves_before_connecting_gets_nothing(tenant: LocalTenant) -> None:
    scope = {"type": "websocket", "path": "/mcp", "root_path": "", "headers": []}
    assert call_asgi(scope, {"type": "websocket.disconnect", "code": 1000}) == []


def test_an_unknown_scope_type_raises_instead_of_reaching_the_app(tenant: LocalTenant) -> None:
    with pytest.raises(ValueError, match="webtransport"):
        call_asgi({"type": "webtransport", "path": "/mcp", "headers": []})


def test_the_lifespan_still_reaches_the_app(tenant: LocalTenant) -> None:
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    async def nothing() -> Any:
        raise AssertionError("not read")

    async def ignore(message: Any) -> None:
        raise AssertionError("not sent")

    async def serve() -> None:
        await protect(app)({"type": "lifespan"}, nothing, ignore)

    asyncio.run(serve())
    assert reached == ["lifespan"]


def test_a_dpop_proof_for_another_host_is_not_accepted_through_its_host_header(
    tenant: LocalTenant, dpop_key: DPoPKey
) -> None:
    """The replayer sends ``Host: evil.example``, the host the captured proof names."""
    token = tenant.mint(audience=RESOURCE, scope="mcp:read", cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("POST", "https://evil.example/mcp", token)
    response = call("POST", "/mcp", Host="evil.example", Authorization=f"DPoP {token}", DPoP=proof)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("why", "host", "method", "path"),
    [
        ("a host outside ALLOWED_HOSTS", "evil.example", "POST", "/mcp"),
        ("a malformed host urlsplit refuses", f"{HOST}[", "POST", "/mcp"),
        ("a host that is not a domain name", f"{HOST}/x", "POST", "/mcp"),
        ("an empty port", f"{HOST}:", "POST", "/mcp"),
        ("a preflight on another host", "evil.example", "OPTIONS", "/mcp"),
        ("the metadata on another host", "evil.example", "GET", METADATA_PATH),
    ],
)
def test_a_refused_host_gets_400_without_reaching_the_app_or_naming_the_host(
    tenant: LocalTenant, why: str, host: str, method: str, path: str
) -> None:
    token = tenant.mint(audience=RESOURCE, scope="mcp:read")
    for headers in ({"Host": host}, {"Host": host, "Authorization": f"Bearer {token}"}):
        response = call(method, path, **headers)
        assert response.status_code == 400, why
        assert response.json()["error"] == "invalid_request", why
        assert "www-authenticate" not in response.headers, why  # no resource_metadata= there


def test_a_request_path_that_would_change_the_host_of_htu_is_refused(
    tenant: LocalTenant,
) -> None:
    """``https://api.example.com`` + ``.evil.example/mcp`` names another host."""
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "path": ".evil.example/mcp",
        "root_path": "",
        "headers": [(b"host", HOST.encode())],
    }
    sent = call_asgi(scope, {"type": "http.request", "body": b""})
    assert sent[0]["status"] == 400


@pytest.mark.parametrize(
    ("why", "debug", "allowed", "host", "status"),
    [
        ("DEBUG with no ALLOWED_HOSTS allows localhost", True, [], "localhost:8000", 200),
        ("and its subdomains", True, [], "mcp.localhost", 200),
        ("and the IPv6 loopback", True, [], "[::1]:8000", 200),
        ("but nothing else", True, [], HOST, 400),
        ("no DEBUG, no ALLOWED_HOSTS: nothing", False, [], "localhost", 400),
        ("a port does not matter", False, [HOST], f"{HOST}:8443", 200),
        ("a leading dot allows subdomains", False, [".example.com"], HOST, 200),
        ("a wildcard allows every well-formed host", False, ["*"], "any.example", 200),
        ("but not a malformed one", False, ["*"], "any.example[", 400),
    ],
)
def test_hosts_are_judged_by_djangos_rule(
    tenant: LocalTenant,
    settings: Any,
    why: str,
    debug: bool,
    allowed: list[str],
    host: str,
    status: int,
) -> None:
    settings.DEBUG, settings.ALLOWED_HOSTS = debug, allowed
    token = tenant.mint(audience=RESOURCE, scope="mcp:read")
    response = call("POST", "/mcp", Host=host, Authorization=f"Bearer {token}")
    assert response.status_code == status, why


def test_the_challenge_points_at_the_metadata_on_the_allowed_host_used(
    tenant: LocalTenant, settings: Any
) -> None:
    settings.ALLOWED_HOSTS = [HOST, "mcp.example.org"]
    response = call("POST", "/mcp", Host="mcp.example.org:8443")
    assert response.status_code == 401
    expected = f'resource_metadata="https://mcp.example.org:8443{METADATA_PATH}"'
    assert expected in response.headers["WWW-Authenticate"]

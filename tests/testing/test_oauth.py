"""The stand-in's authorization server for MCP clients: metadata, registration, a headless
``/authorize`` with PKCE, and the code and refresh grants — and what each refuses."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from django_auth0_obo.testing import MCP_API, LocalTenant

REDIRECT = "http://127.0.0.1:9/callback"


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def register(http: requests.Session, tenant: LocalTenant, **metadata: Any) -> dict[str, Any]:
    body = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", **metadata}
    response = http.post(f"{tenant.base_url}/oidc/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def authorize(
    http: requests.Session, tenant: LocalTenant, client_id: str, verifier: str, **extra: str
) -> requests.Response:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": "xyz",
        "scope": "openid offline_access mcp:read",
        "resource": MCP_API,
        "prompt": "consent",
        **extra,
    }
    return http.get(f"{tenant.base_url}/authorize?{urlencode(params)}", allow_redirects=False)


def redirect_query(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}


def code_grant(
    http: requests.Session,
    tenant: LocalTenant,
    client_id: str,
    code: str,
    verifier: str,
    **extra: str,
) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **extra,
    }
    return http.post(tenant.token_endpoint, data=form)


def test_the_metadata_names_every_endpoint_an_mcp_client_needs(
    http: requests.Session, tenant: LocalTenant
) -> None:
    document = http.get(f"{tenant.base_url}/.well-known/oauth-authorization-server").json()
    assert document["issuer"] == tenant.issuer
    assert document["authorization_endpoint"] == f"{tenant.base_url}/authorize"
    assert document["registration_endpoint"] == f"{tenant.base_url}/oidc/register"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "none" in document["token_endpoint_auth_methods_supported"]


def test_the_whole_flow_issues_a_user_token_for_the_requested_resource(
    http: requests.Session, tenant: LocalTenant
) -> None:
    client = register(http, tenant, client_name="Inspector")
    verifier = secrets.token_urlsafe(48)
    back = redirect_query(authorize(http, tenant, client["client_id"], verifier))
    assert back["state"] == "xyz"

    response = code_grant(http, tenant, client["client_id"], back["code"], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    claims = tenant.verify(body["access_token"], audience=MCP_API)
    assert claims["sub"] == "auth0|user123"
    assert claims["azp"] == client["client_id"]
    assert claims["scope"] == "mcp:read"  # login scopes are not API scopes
    assert body["token_type"] == "Bearer"

    refreshed = http.post(
        tenant.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "client_id": client["client_id"],
            "refresh_token": body["refresh_token"],
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert (
        tenant.verify(refreshed.json()["access_token"], audience=MCP_API)["sub"] == "auth0|user123"
    )
    reused = http.post(
        tenant.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "client_id": client["client_id"],
            "refresh_token": body["refresh_token"],
        },
    )
    assert reused.json()["error"] == "invalid_grant"


def test_a_confidential_client_must_authenticate(
    http: requests.Session, tenant: LocalTenant
) -> None:
    client = register(http, tenant, token_endpoint_auth_method="client_secret_post")
    verifier = secrets.token_urlsafe(48)
    code = redirect_query(authorize(http, tenant, client["client_id"], verifier))["code"]
    refused = code_grant(http, tenant, client["client_id"], code, verifier)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("why", "extra", "error"),
    [
        ("no PKCE", {"code_challenge": "", "code_challenge_method": ""}, "invalid_request"),
        ("plain PKCE", {"code_challenge_method": "plain"}, "invalid_request"),
        ("implicit flow", {"response_type": "token"}, "unsupported_response_type"),
        ("unknown API", {"resource": "https://nowhere.example"}, "invalid_target"),
    ],
)
def test_authorize_refuses_by_redirecting_with_the_error(
    http: requests.Session, tenant: LocalTenant, why: str, extra: dict[str, str], error: str
) -> None:
    client = register(http, tenant)
    back = redirect_query(authorize(http, tenant, client["client_id"], "v" * 43, **extra))
    assert back.get("error") == error, why
    assert "code" not in back, why
    assert back["state"] == "xyz", why


@pytest.mark.parametrize(
    ("why", "extra"),
    [
        ("unknown client", {"client_id": "nobody"}),
        ("unregistered redirect_uri", {"redirect_uri": "https://attacker.example/cb"}),
    ],
)
def test_authorize_never_redirects_to_an_unverified_place(
    http: requests.Session, tenant: LocalTenant, why: str, extra: dict[str, str]
) -> None:
    client = register(http, tenant)
    client_id = extra.pop("client_id", client["client_id"])
    response = authorize(http, tenant, client_id, "v" * 43, **extra)
    assert response.status_code == 400, why
    assert "Location" not in response.headers, why


@pytest.mark.parametrize(
    ("why", "change"),
    [
        ("wrong verifier", {"code_verifier": "w" * 43}),
        ("other redirect_uri", {"redirect_uri": "http://127.0.0.1:9/other"}),
        ("other resource", {"resource": "https://api.example.com"}),
        ("unknown code", {"code": "nope"}),
    ],
)
def test_the_code_grant_refuses_mismatches(
    http: requests.Session, tenant: LocalTenant, why: str, change: dict[str, str]
) -> None:
    client = register(http, tenant)
    verifier = secrets.token_urlsafe(48)
    code = redirect_query(authorize(http, tenant, client["client_id"], verifier))["code"]
    form = {"code": code, "code_verifier": verifier, **change}
    response = code_grant(
        http, tenant, client["client_id"], form.pop("code"), form.pop("code_verifier"), **form
    )
    assert response.status_code == 400, why
    assert response.json()["error"] in ("invalid_grant", "invalid_target"), why


def test_a_code_is_single_use(http: requests.Session, tenant: LocalTenant) -> None:
    client = register(http, tenant)
    verifier = secrets.token_urlsafe(48)
    code = redirect_query(authorize(http, tenant, client["client_id"], verifier))["code"]
    assert code_grant(http, tenant, client["client_id"], code, verifier).status_code == 200
    again = code_grant(http, tenant, client["client_id"], code, verifier)
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("why", "body"),
    [
        ("no redirect_uris", {}),
        ("relative redirect_uri", {"redirect_uris": ["/cb"]}),
        ("unknown auth method", {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "x"}),
        ("not an object", ["redirect_uris"]),
    ],
)
def test_registration_refuses_bad_metadata(
    http: requests.Session, tenant: LocalTenant, why: str, body: Any
) -> None:
    response = http.post(f"{tenant.base_url}/oidc/register", json=body)
    assert response.status_code == 400, why
    assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri"), why

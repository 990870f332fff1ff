"""The stand-in serves discovery and JWKS over real HTTPS, trusted only through its CA."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from django_auth0_obo.testing import DEFAULT_AUDIENCE, DEFAULT_CLIENT_ID, LocalTenant


def test_addresses_follow_auth0_conventions(tenant: LocalTenant) -> None:
    assert tenant.domain == f"127.0.0.1:{tenant.port}"
    assert tenant.issuer == f"https://127.0.0.1:{tenant.port}/"
    assert tenant.jwks_uri == f"{tenant.base_url}/.well-known/jwks.json"
    assert tenant.token_endpoint == f"{tenant.base_url}/oauth/token"


def test_discovery_is_served_over_https_with_auth0_fields(
    tenant: LocalTenant, http: requests.Session
) -> None:
    response = http.get(tenant.discovery_url, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert document["issuer"] == tenant.issuer
    assert document["jwks_uri"] == tenant.jwks_uri
    assert document["token_endpoint"] == tenant.token_endpoint
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in document["grant_types_supported"]
    assert document["dpop_signing_alg_values_supported"] == ["ES256"]
    assert {"client_secret_post", "client_secret_basic"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )
    assert "code" in document["response_types_supported"]


def test_jwks_lists_public_signing_keys(tenant: LocalTenant, http: requests.Session) -> None:
    keys = http.get(tenant.jwks_uri, timeout=5).json()["keys"]

    assert len(keys) == 1
    (key,) = keys
    assert key["kid"] == tenant.signing_kid
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kty"] == "RSA"
    assert {"n", "e"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_jwks_cache_control_is_configurable(tenant: LocalTenant, http: requests.Session) -> None:
    assert "Cache-Control" not in http.get(tenant.jwks_uri, timeout=5).headers

    tenant.jwks_max_age = 60

    assert http.get(tenant.jwks_uri, timeout=5).headers["Cache-Control"] == "public, max-age=60"


def test_verification_fails_without_the_ca_bundle(tenant: LocalTenant) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tenant.discovery_url, timeout=5)


def test_plain_http_is_not_served(tenant: LocalTenant) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{tenant.domain}/.well-known/jwks.json", timeout=5)
    assert requests.get(tenant.jwks_uri, verify=tenant.ca_bundle, timeout=5).ok


def test_certificate_is_valid_for_localhost_too(tenant: LocalTenant) -> None:
    url = f"https://localhost:{tenant.port}/.well-known/jwks.json"

    assert requests.get(url, verify=tenant.ca_bundle, timeout=5).status_code == 200


def test_unknown_paths_answer_404_json(tenant: LocalTenant, http: requests.Session) -> None:
    response = http.get(f"{tenant.base_url}/nope", timeout=5)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert tenant.count("/nope") == 1


def test_wrong_method_answers_405(tenant: LocalTenant, http: requests.Session) -> None:
    response = http.get(tenant.token_endpoint, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_stop_closes_the_port_and_removes_the_ca() -> None:
    with LocalTenant() as tenant, requests.Session() as session:
        session.trust_env = False
        session.verify = tenant.ca_bundle
        port, ca_bundle = tenant.port, tenant.ca_bundle
        assert session.get(tenant.jwks_uri, timeout=5).status_code == 200

    assert not Path(ca_bundle).exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    with pytest.raises(RuntimeError):
        _ = tenant.domain


def test_fresh_keys_give_each_tenant_its_own_signing_key(tenant: LocalTenant) -> None:
    other = LocalTenant(fresh_keys=True)

    assert other.signing_kid != tenant.signing_kid


def test_django_settings_point_at_the_tenant(tenant: LocalTenant) -> None:
    settings = tenant.django_settings(LEEWAY=5)

    assert settings == {
        "DOMAIN": tenant.domain,
        "AUDIENCE": DEFAULT_AUDIENCE,
        "CLIENT_ID": DEFAULT_CLIENT_ID,
        "CLIENT_SECRET": tenant.clients[DEFAULT_CLIENT_ID].secret,
        "TLS_CA_BUNDLE": tenant.ca_bundle,
        "AUDIT_SYNC": True,  # tests see their audit rows at once
        "LEEWAY": 5,
    }
    assert tenant.django_settings(audience="https://mcp.example.com")["AUDIENCE"] == (
        "https://mcp.example.com"
    )


def test_command_line_prints_its_configuration_then_serves(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "django_auth0_obo.testing", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--client-secret", "s3cret"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DJANGO_AUTH0_OBO_STATE": str(tmp_path)},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["client_id"] == DEFAULT_CLIENT_ID
        assert info["client_secret"] == "s3cret"
        assert info["domain"] == f"127.0.0.1:{port}"
        assert info["issuer"] == f"https://{info['domain']}/"
        response = requests.get(
            f"https://{info['domain']}/.well-known/openid-configuration",
            verify=info["ca_bundle"],
            timeout=5,
        )
        assert response.json()["issuer"] == info["issuer"]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    assert not Path(info["ca_bundle"]).exists()

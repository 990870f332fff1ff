"""RFC 9728 protected resource metadata, and the ``resource_metadata`` pointer in challenges."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.permissions.test_permissions")]

URL = "/.well-known/oauth-protected-resource"

#: RFC 9728 §2: every metadata parameter the RFC defines (the document may use only these here).
RFC9728_FIELDS = frozenset(
    {
        "resource",
        "authorization_servers",
        "jwks_uri",
        "scopes_supported",
        "bearer_methods_supported",
        "resource_signing_alg_values_supported",
        "resource_name",
        "resource_documentation",
        "resource_policy_uri",
        "resource_tos_uri",
        "tls_client_certificate_bound_access_tokens",
        "authorization_details_types_supported",
        "dpop_signing_alg_values_supported",
        "dpop_bound_access_tokens_required",
    }
)


def obo(settings, **values):
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": ["https://mcp.example.com", "https://api.example.com/v1/mcp"],
        "SCOPES_SUPPORTED": ["calendar:read", "calendar:write"],
        **values,
    }


def test_the_document_has_the_rfc_9728_fields_and_no_others(client, settings):
    obo(settings)
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert set(document) <= RFC9728_FIELDS
    assert document == {
        "resource": "https://mcp.example.com",
        "authorization_servers": ["https://tenant.example.com/"],
        "scopes_supported": ["calendar:read", "calendar:write"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "dpop_bound_access_tokens_required": False,
    }


def test_it_is_public_and_cacheable_even_with_bad_credentials(client, settings):
    obo(settings)
    response = client.get(URL, HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 200
    assert "max-age=" in response["Cache-Control"]
    assert "public" in response["Cache-Control"]
    assert client.post(URL).status_code == 405
    assert client.head(URL).status_code == 200


def test_the_resource_setting_and_every_domain_are_published(client, settings):
    obo(
        settings,
        DOMAIN=None,
        DOMAINS=["tenant.example.com", "login.example.org:8443"],
        RESOURCE="https://mcp.example.com/mcp",
    )
    document = client.get(URL).json()
    assert document["resource"] == "https://mcp.example.com/mcp"
    assert document["authorization_servers"] == [
        "https://tenant.example.com/",
        "https://login.example.org:8443/",
    ]


@pytest.mark.parametrize(
    ("mode", "fields"),
    [
        ("disabled", None),
        ("allowed", (["ES256"], False)),
        ("required", (["ES256"], True)),
    ],
)
def test_dpop_fields_follow_the_dpop_mode(client, settings, mode, fields):
    obo(settings, DPOP_MODE=mode)
    document = client.get(URL).json()
    if fields is None:
        assert "dpop_signing_alg_values_supported" not in document
        assert "dpop_bound_access_tokens_required" not in document
    else:
        assert (
            document["dpop_signing_alg_values_supported"],
            document["dpop_bound_access_tokens_required"],
        ) == fields


def test_the_path_form_serves_the_resource_with_that_path(client, settings):
    obo(settings)
    response = client.get(f"{URL}/v1/mcp")
    assert response.status_code == 200
    assert response.json()["resource"] == "https://api.example.com/v1/mcp"
    assert client.get(f"{URL}/unknown").status_code == 404


def test_a_401_points_at_the_metadata_when_the_urls_are_installed(client, settings):
    obo(settings)
    settings.ALLOWED_HOSTS = ["api.example.net"]
    response = client.get("/actors", HTTP_HOST="api.example.net")
    assert response.status_code == 401
    assert (
        'resource_metadata="http://api.example.net/.well-known/oauth-protected-resource"'
        in response["WWW-Authenticate"]
    )


@pytest.mark.urls("tests.permissions.test_permissions_nometadata")
def test_a_401_has_no_resource_metadata_when_the_urls_are_not_installed(client, settings):
    obo(settings)
    response = client.get("/actors")
    assert response.status_code == 401
    assert "resource_metadata" not in response["WWW-Authenticate"]


@pytest.mark.urls("testproject.urls")
def test_the_example_project_installs_the_metadata(client):
    document = client.get(URL).json()
    assert document["resource"] == "https://mcp.example.com"

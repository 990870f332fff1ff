"""E030, E031 and the optional RFC 9728 metadata fields MCP clients show to users."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

from django_auth0_obo.checks import check_resource
from django_auth0_obo.metadata import build_metadata

BASE: dict[str, Any] = {"DOMAIN": "tenant.us.auth0.com", "AUDIENCE": "https://api.example.com/mcp"}


@pytest.mark.parametrize(
    ("why", "extra", "expected"),
    [
        ("no RESOURCE: the first audience is published", {}, []),
        ("RESOURCE is an audience", {"RESOURCE": "https://api.example.com/mcp"}, []),
        (
            "RESOURCE that no token may carry",
            {"RESOURCE": "https://mcp.example.com"},
            ["auth0_obo.E030"],
        ),
        (
            "RESOURCE not a string",
            {"RESOURCE": ["https://api.example.com/mcp"]},
            ["auth0_obo.E030"],
        ),
        ("documentation not a URL", {"RESOURCE_DOCUMENTATION": "docs"}, ["auth0_obo.E031"]),
        ("policy not a URL", {"RESOURCE_POLICY_URI": "javascript:x"}, ["auth0_obo.E031"]),
        ("terms not a string", {"RESOURCE_TOS_URI": 3}, ["auth0_obo.E031"]),
        ("name not a string", {"RESOURCE_NAME": ["x"]}, ["auth0_obo.E031"]),
    ],
)
def test_the_resource_check(
    settings: Any, why: str, extra: dict[str, Any], expected: list[str]
) -> None:
    settings.AUTH0_OBO = {**BASE, **extra}
    assert [m.id for m in check_resource()] == expected, why


def test_the_resource_check_is_registered(settings: Any) -> None:
    settings.AUTH0_OBO = {**BASE, "RESOURCE": "https://elsewhere.example"}
    assert "auth0_obo.E030" in [m.id for m in checks.run_checks()]


def test_the_metadata_carries_the_optional_fields_from_settings(settings: Any) -> None:
    settings.AUTH0_OBO = {
        **BASE,
        "RESOURCE_NAME": "Calendar MCP",
        "RESOURCE_DOCUMENTATION": "https://docs.example.com/mcp",
        "RESOURCE_POLICY_URI": "https://example.com/privacy",
        "RESOURCE_TOS_URI": "https://example.com/terms",
    }
    document = build_metadata()
    assert document["resource"] == "https://api.example.com/mcp"
    assert document["resource_name"] == "Calendar MCP"
    assert document["resource_documentation"] == "https://docs.example.com/mcp"
    assert document["resource_policy_uri"] == "https://example.com/privacy"
    assert document["resource_tos_uri"] == "https://example.com/terms"
    settings.AUTH0_OBO = BASE
    assert not {"resource_name", "resource_documentation"} & set(build_metadata())

"""drf-spectacular documents ``Auth0Authentication`` with no user code: Bearer and DPoP schemes,
and each view's required scopes (the example project's views)."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

SPECTACULAR = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}


@pytest.fixture
def schema_settings(settings: Any) -> Any:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **SPECTACULAR}
    return settings


def generate() -> dict[str, Any]:
    """The example project's schema; without the extension its operations have no security."""
    return SchemaGenerator(urlconf="testproject.urls").get_schema(request=None, public=True)


def test_the_schema_has_bearer_and_dpop_security_schemes(schema_settings: Any) -> None:
    schema = generate()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["auth0Bearer"]["type"] == "http"
    assert schemes["auth0Bearer"]["scheme"] == "bearer"
    assert schemes["auth0DPoP"]["scheme"] == "dpop"
    assert "DPoP" in schemes["auth0DPoP"]["description"]
    validate_schema(schema)


def test_each_operation_names_the_scopes_its_view_requires(schema_settings: Any) -> None:
    paths = generate()["paths"]

    calendar = paths["/api/calendar/events"]["get"]["security"]
    assert calendar == [{"auth0Bearer": ["calendar:read"]}, {"auth0DPoP": ["calendar:read"]}]
    whoami = paths["/api/whoami"]["get"]["security"]
    assert whoami == [{"auth0Bearer": []}, {"auth0DPoP": []}]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("disabled", ["auth0Bearer"]),
        ("required", ["auth0DPoP"]),
        ("allowed", ["auth0Bearer", "auth0DPoP"]),
    ],
)
def test_the_schemes_offered_follow_dpop_mode(
    schema_settings: Any, mode: str, expected: list[str]
) -> None:
    schema_settings.AUTH0_OBO = {**schema_settings.AUTH0_OBO, "DPOP_MODE": mode}

    security = generate()["paths"]["/api/whoami"]["get"]["security"]

    assert [name for requirement in security for name in requirement] == expected

"""drf-spectacular documents ``Auth0Authentication`` with no user code: Bearer and DPoP schemes,
and each view's required scopes (the example project's views), without the "could not resolve
authenticator" warning every view gave before the extension shipped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.management.commands.spectacular import Command as Spectacular
from drf_spectacular.management.commands.spectacular import SchemaGenerationError
from drf_spectacular.validation import validate_schema

from django_auth0_obo.contrib.spectacular import Auth0AuthenticationScheme

SPECTACULAR = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}


@pytest.fixture
def schema_settings(settings: Any) -> Any:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **SPECTACULAR}
    return settings


@pytest.fixture
def warnings() -> Iterator[dict[str, int]]:
    """The warnings drf-spectacular emits during the test (it collects them process-wide)."""
    GENERATOR_STATS.reset()
    yield GENERATOR_STATS._warn_cache
    GENERATOR_STATS.reset()


@pytest.fixture
def without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """drf-spectacular as it is without this app's extension registered."""
    registry = OpenApiAuthenticationExtension._registry
    assert Auth0AuthenticationScheme in registry  # registered by AppConfig.ready(), no user code
    others = [extension for extension in registry if extension is not Auth0AuthenticationScheme]
    monkeypatch.setattr(OpenApiAuthenticationExtension, "_registry", others)


UNRESOLVED = "could not resolve authenticator <class 'django_auth0_obo.authentication."


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


# -- no "could not resolve authenticator" -------------------------------------------------------


def test_generating_the_schema_warns_about_nothing(
    schema_settings: Any, warnings: dict[str, int]
) -> None:
    generate()

    assert dict(warnings) == {}


def test_without_the_extension_the_schema_would_warn(
    schema_settings: Any, warnings: dict[str, int], without_the_extension: None
) -> None:
    """What the test above guards against: the warning drf-spectacular gives an unknown class."""
    security = generate()["paths"]["/api/whoami"]["get"].get("security")

    unresolved = [message for message in warnings if UNRESOLVED in message]
    warned = {view for message in unresolved for view in re.findall(r"\[(\w+)\]", message)}
    assert {"WhoAmIView", "CalendarEventsView", "McpCalendarView"} <= warned, list(warnings)
    assert security is None


def test_spectacular_fail_on_warn_passes(
    schema_settings: Any, warnings: dict[str, int], tmp_path: Path
) -> None:
    """``manage.py spectacular --fail-on-warn --validate``, as a user's CI runs it (the command
    object itself: the example project does not list drf_spectacular in INSTALLED_APPS)."""
    out = tmp_path / "schema.yaml"

    call_command(
        Spectacular(),
        "--fail-on-warn",
        "--validate",
        "--urlconf",
        "tests.spectacular_urls",
        "--file",
        str(out),
    )

    assert "auth0Bearer" in out.read_text()
    assert dict(warnings) == {}


def test_spectacular_fail_on_warn_would_fail_without_the_extension(
    schema_settings: Any, warnings: dict[str, int], tmp_path: Path, without_the_extension: None
) -> None:
    with pytest.raises(SchemaGenerationError, match="due to warnings"):
        call_command(
            Spectacular(),
            "--fail-on-warn",
            "--urlconf",
            "tests.spectacular_urls",
            "--file",
            str(tmp_path / "schema.yaml"),
        )
    assert [message for message in warnings if UNRESOLVED in message], list(warnings)

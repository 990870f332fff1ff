"""Performance system checks W002 to W004: each fires on its bad input and stays quiet otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from django_auth0_obo.checks import check_performance

BASE: dict[str, Any] = {
    "DOMAIN": "tenant.us.auth0.com",
    "AUDIENCE": "https://api.example.com",
    "CACHE_ALIAS": "shared",
}


@pytest.fixture(autouse=True)
def production(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEBUG off, a persistent database connection and a cache shared between processes."""
    settings.DEBUG = False
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 600)
    settings.CACHES = {
        **settings.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        },
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }


def ids(settings: Any, **overrides: Any) -> list[str]:
    settings.AUTH0_OBO = {**BASE, **overrides}
    return [message.id for message in check_performance()]


def test_the_defaults_on_a_production_setup_pass(settings: Any) -> None:
    assert ids(settings) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # the memo's revocation generation cannot cross processes through a local cache
        ({"CACHE_ALIAS": "local"}, ["auth0_obo.W003"]),
        ({"AUDIT_BATCH_SIZE": 0}, ["auth0_obo.W004"]),  # a batch never fills
        ({"AUDIT_MAX_BUFFERED": 10}, ["auth0_obo.W004"]),  # smaller than one batch
        ({"AUDIT_FLUSH_INTERVAL": 0}, ["auth0_obo.W004"]),  # the writer would spin
    ],
    ids=["memo-with-local-cache", "empty-batch", "bound-below-batch", "zero-interval"],
)
def test_each_bad_setting_is_reported(settings: Any, overrides: dict, expected: list) -> None:
    assert ids(settings, **overrides) == expected


@pytest.mark.parametrize(
    "overrides",
    [
        {"CACHE_ALIAS": "local", "TOKEN_MEMO_TTL": 0},  # no memo, nothing to invalidate
        {"AUDIT_SYNC": True, "AUDIT_FLUSH_INTERVAL": 0},  # no buffer to flush
    ],
    ids=["memo-off", "synchronous-audit"],
)
def test_settings_that_make_a_warning_moot_silence_it(settings: Any, overrides: dict) -> None:
    assert ids(settings, **overrides) == []


def test_a_connection_per_request_is_reported_outside_debug(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(settings.DATABASES["default"], "CONN_MAX_AGE", 0)
    assert ids(settings) == ["auth0_obo.W002"]
    settings.DEBUG = True
    assert ids(settings) == []


def test_the_example_project_keeps_connections(settings: Any) -> None:
    import testproject.settings as example

    assert example.DATABASES["default"]["CONN_MAX_AGE"] > 0
    assert example.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True

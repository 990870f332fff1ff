"""System checks: every id fires on its bad input and stays quiet on good input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import checks

from django_auth0_obo.checks import check_settings

GOOD: dict[str, Any] = {
    "DOMAIN": "tenant.us.auth0.com",
    "AUDIENCE": "https://api.example.com",
    "CACHE_ALIAS": "shared",
}


@pytest.fixture(autouse=True)
def shared_cache(settings: Any, tmp_path: Path) -> None:
    """A cache that is shared between processes and never evicts a replay record early (so
    neither W001 nor W005 has a reason to fire; no check connects to it), and ones that cull."""
    settings.CACHES = {
        **settings.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        },
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "files": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        },
        "database": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"},
        "pymemcache": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": "127.0.0.1:1",
        },
        "pylibmc": {
            "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
            "LOCATION": "127.0.0.1:1",
        },
        "large database": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "t",
            "OPTIONS": {"MAX_ENTRIES": 10_000_000},
        },
    }


def ids(config: Any, settings: Any) -> list[str]:
    settings.AUTH0_OBO = config
    return [message.id for message in check_settings()]


def test_a_good_configuration_passes_every_check(settings: Any, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    config = {
        **GOOD,
        "DOMAINS": ["login.example.com", "tenant.us.auth0.com:8443"],
        "AUDIENCE": ["https://api.example.com", "https://mcp.example.com"],
        "CLIENT_ID": "client",
        "CLIENT_SECRET": "secret",
        "ALGORITHMS": ["RS256", "PS256", "ES256", "EdDSA"],
        "DPOP_ALGORITHMS": ["ES256", "EdDSA"],
        "DPOP_MODE": "required",
        "TLS_CA_BUNDLE": str(bundle),
        "CLIENT_AUTH_METHOD": "client_secret_basic",
        "AUDIT": "all",
        "USER_RESOLVER": "tests.verify.test_authentication_bearer.resolve_known_user",
        "LEEWAY": 0,
        "HTTP_TIMEOUT": 2.5,
        "REQUIRE_AT_JWT": True,
        "MAX_TOKEN_AGE": 3600,
    }

    assert ids(config, settings) == []


def test_checks_are_registered_with_django(settings: Any) -> None:
    settings.AUTH0_OBO = {**GOOD, "DPOP_MODE": "bogus"}

    messages = checks.run_checks(tags=["auth0_obo"])

    assert "auth0_obo.E004" in [message.id for message in messages]


CASES: dict[str, tuple[Any, str]] = {
    "no AUTH0_OBO": (None, "auth0_obo.E001"),
    "AUTH0_OBO not a dict": (["tenant"], "auth0_obo.E001"),
    "no DOMAIN": ({**GOOD, "DOMAIN": None}, "auth0_obo.E001"),
    "no AUDIENCE": ({**GOOD, "AUDIENCE": None}, "auth0_obo.E002"),
    "empty AUDIENCE": ({**GOOD, "AUDIENCE": [""]}, "auth0_obo.E002"),
    "scheme in DOMAIN": ({**GOOD, "DOMAIN": "https://tenant.us.auth0.com"}, "auth0_obo.E003"),
    "path in DOMAIN": ({**GOOD, "DOMAIN": "tenant.us.auth0.com/"}, "auth0_obo.E003"),
    "bad port in DOMAINS": ({**GOOD, "DOMAINS": ["tenant.us.auth0.com:https"]}, "auth0_obo.E003"),
    "bad DPOP_MODE": ({**GOOD, "DPOP_MODE": "sometimes"}, "auth0_obo.E004"),
    "HS256 in ALGORITHMS": ({**GOOD, "ALGORITHMS": ["RS256", "HS256"]}, "auth0_obo.E005"),
    "none in ALGORITHMS": ({**GOOD, "ALGORITHMS": ["none"]}, "auth0_obo.E005"),
    "empty ALGORITHMS": ({**GOOD, "ALGORITHMS": []}, "auth0_obo.E005"),
    "secret without client id": ({**GOOD, "CLIENT_SECRET": "s3cret"}, "auth0_obo.E006"),
    "missing TLS_CA_BUNDLE": ({**GOOD, "TLS_CA_BUNDLE": "/nonexistent/ca.pem"}, "auth0_obo.E007"),
    "unknown key": ({**GOOD, "AUDIENCES": ["x"]}, "auth0_obo.E008"),
    "HMAC DPoP algorithm": ({**GOOD, "DPOP_ALGORITHMS": ["HS256"]}, "auth0_obo.E009"),
    "bad CLIENT_AUTH_METHOD": ({**GOOD, "CLIENT_AUTH_METHOD": "private_key"}, "auth0_obo.E010"),
    "bad AUDIT": ({**GOOD, "AUDIT": "sometimes"}, "auth0_obo.E011"),
    "USER_RESOLVER not importable": ({**GOOD, "USER_RESOLVER": "no.such.func"}, "auth0_obo.E012"),
    "CACHE_ALIAS not in CACHES": ({**GOOD, "CACHE_ALIAS": "missing"}, "auth0_obo.E013"),
    "negative LEEWAY": ({**GOOD, "LEEWAY": -1}, "auth0_obo.E014"),
    "HTTP_TIMEOUT not a number": ({**GOOD, "HTTP_TIMEOUT": "10"}, "auth0_obo.E014"),
    "boolean cooldown": ({**GOOD, "JWKS_REFETCH_COOLDOWN": True}, "auth0_obo.E014"),
    "bad DPOP_CLIENT_KEY": ({**GOOD, "DPOP_CLIENT_KEY": "not a key"}, "auth0_obo.E015"),
    "bad TOKEN_ENCRYPTION_KEYS": (
        {**GOOD, "TOKEN_ENCRYPTION_KEYS": ["not a fernet key"]},
        "auth0_obo.E016",
    ),
    "algorithm given as a list": ({**GOOD, "ALGORITHMS": [["RS256"]]}, "auth0_obo.E005"),
    "DPoP algorithm given as an object": ({**GOOD, "DPOP_ALGORITHMS": [{}]}, "auth0_obo.E009"),
    "REQUIRE_AT_JWT a string": ({**GOOD, "REQUIRE_AT_JWT": "yes"}, "auth0_obo.E017"),
    "REQUIRE_AT_JWT None": ({**GOOD, "REQUIRE_AT_JWT": None}, "auth0_obo.E017"),
    "MAX_TOKEN_AGE zero": ({**GOOD, "MAX_TOKEN_AGE": 0}, "auth0_obo.E018"),
    "MAX_TOKEN_AGE negative": ({**GOOD, "MAX_TOKEN_AGE": -60}, "auth0_obo.E018"),
    "MAX_TOKEN_AGE a string": ({**GOOD, "MAX_TOKEN_AGE": "3600"}, "auth0_obo.E018"),
    "MAX_TOKEN_AGE a boolean": ({**GOOD, "MAX_TOKEN_AGE": True}, "auth0_obo.E018"),
    "MAX_TOKEN_AGE infinite": ({**GOOD, "MAX_TOKEN_AGE": float("inf")}, "auth0_obo.E018"),
    "MAX_TOKEN_AGE NaN": ({**GOOD, "MAX_TOKEN_AGE": float("nan")}, "auth0_obo.E018"),
    "per-process cache with DPoP": ({**GOOD, "CACHE_ALIAS": "local"}, "auth0_obo.W001"),
    "DPoP replay on a file cache": ({**GOOD, "CACHE_ALIAS": "files"}, "auth0_obo.W005"),
    "DPoP replay on a database cache": ({**GOOD, "CACHE_ALIAS": "database"}, "auth0_obo.W005"),
    "DPoP replay on pymemcache": ({**GOOD, "CACHE_ALIAS": "pymemcache"}, "auth0_obo.W005"),
    "DPoP replay on pylibmc": ({**GOOD, "CACHE_ALIAS": "pylibmc"}, "auth0_obo.W005"),
}


@pytest.mark.parametrize(("config", "expected"), list(CASES.values()), ids=list(CASES))
def test_each_check_fires_on_its_bad_input(settings: Any, config: Any, expected: str) -> None:
    found = ids(config, settings)

    assert expected in found
    assert set(found) == {expected}, found


def test_the_unknown_key_check_names_the_key(settings: Any) -> None:
    settings.AUTH0_OBO = {**GOOD, "AUDIENCES": ["x"]}

    [message] = check_settings()

    assert "AUDIENCES" in message.msg


def test_a_per_process_cache_is_fine_when_dpop_is_disabled(settings: Any) -> None:
    assert ids({**GOOD, "CACHE_ALIAS": "local", "DPOP_MODE": "disabled"}, settings) == []


@pytest.mark.parametrize(
    ("debug", "argv", "warned"),
    [
        (False, ["gunicorn", "project.wsgi"], True),
        (False, ["manage.py", "check", "--deploy"], True),
        (False, ["manage.py", "migrate"], True),
        (True, ["manage.py", "migrate"], False),  # development: one process
        (False, ["manage.py", "runserver"], False),  # the development server is one process
    ],
)
def test_the_per_process_cache_warning_fires_only_where_several_processes_are_likely(
    settings: Any, monkeypatch: pytest.MonkeyPatch, debug: bool, argv: list[str], warned: bool
) -> None:
    settings.DEBUG = debug
    monkeypatch.setattr("sys.argv", argv)

    found = ids({**GOOD, "CACHE_ALIAS": "local"}, settings)

    assert found == (["auth0_obo.W001"] if warned else [])


@pytest.mark.parametrize(
    "config",
    [
        {**GOOD, "CACHE_ALIAS": "files", "DPOP_MODE": "disabled"},  # no replay records
        {**GOOD, "CACHE_ALIAS": "large database"},  # MAX_ENTRIES well above a window's proofs
        {**GOOD, "CACHE_ALIAS": "shared"},  # Redis: noeviction is the operator's part
    ],
    ids=["dpop-disabled", "large-max-entries", "redis"],
)
def test_a_replay_cache_that_cannot_evict_early_is_not_reported(
    settings: Any, config: dict[str, Any]
) -> None:
    assert "auth0_obo.W005" not in ids(config, settings)


def test_the_per_process_cache_is_not_reported_as_evicting(settings: Any) -> None:
    """LocMemCache culls too, but the replay records then stay in the process itself."""
    settings.DEBUG = True  # one process: W001 has no reason to fire either
    assert ids({**GOOD, "CACHE_ALIAS": "local"}, settings) == []


def test_the_eviction_warning_says_what_to_do(settings: Any) -> None:
    settings.AUTH0_OBO = {**GOOD, "CACHE_ALIAS": "database"}

    [message] = check_settings()

    assert "MAX_ENTRIES (300)" in message.msg
    assert "noeviction" in message.hint
    assert "MAX_ENTRIES" in message.hint

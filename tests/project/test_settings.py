"""The ``AUTH0_OBO`` settings object: lazy, defaulted, strict about names, reloaded in tests."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_auth0_obo import conf
from django_auth0_obo.conf import DEFAULTS, OboSettings, obo_settings

MINIMAL = {"DOMAIN": "tenant.example.com", "AUDIENCE": "https://api.example.com"}


def test_settings_are_not_read_until_used() -> None:
    with override_settings(AUTH0_OBO={"NOT_A_SETTING": 1}):
        lazy = OboSettings()  # constructing it reads nothing, so nothing fails yet
        with pytest.raises(ImproperlyConfigured):
            getattr(lazy, "DOMAIN")  # noqa: B009 - the access is the point


@override_settings(AUTH0_OBO=MINIMAL)
@pytest.mark.parametrize("name", sorted(set(DEFAULTS) - set(MINIMAL)))
def test_every_unset_key_has_its_documented_default(name: str) -> None:
    assert getattr(obo_settings, name) == DEFAULTS[name]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALGORITHMS", ["RS256"]),
        ("DPOP_MODE", "allowed"),
        ("DPOP_ALGORITHMS", ["ES256"]),
        ("DPOP_IAT_LEEWAY", 30),
        ("DPOP_IAT_OFFSET", 300),
        ("REQUIRED_CLAIMS", []),
        ("CACHE_ALIAS", "default"),
        ("JWKS_CACHE_TTL", 600),
        ("JWKS_REFETCH_COOLDOWN", 30),
        ("HTTP_TIMEOUT", 10),
        ("MAX_DELEGATION_DEPTH", 5),
        ("REQUIRE_ACTOR_AZP_MATCH", True),
        ("CLIENT_AUTH_METHOD", "client_secret_post"),
        ("TOKEN_CACHE_REFRESH_MARGIN", 30),
        ("AUDIT", "delegated"),
        ("AUDIT_RETENTION_DAYS", 90),
    ],
)
def test_defaults_match_the_contract(name: str, value: Any) -> None:
    assert DEFAULTS[name] == value


def test_the_leeway_default_is_small() -> None:
    assert 0 < DEFAULTS["LEEWAY"] <= 60


def test_an_unknown_key_is_an_error_naming_it() -> None:
    with (
        override_settings(AUTH0_OBO={**MINIMAL, "AUDIENCES": ["x"]}),
        pytest.raises(ImproperlyConfigured, match="AUDIENCES"),
    ):
        getattr(obo_settings, "DOMAIN")  # noqa: B009


def test_settings_that_are_not_a_dict_are_an_error() -> None:
    with (
        override_settings(AUTH0_OBO=["DOMAIN"]),
        pytest.raises(ImproperlyConfigured, match="must be a dict"),
    ):
        getattr(obo_settings, "DOMAIN")  # noqa: B009


def test_asking_for_a_setting_that_does_not_exist_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NOPE"):
        getattr(obo_settings, "NOPE")  # noqa: B009


def test_override_settings_reloads_values_and_derived_values() -> None:
    with override_settings(AUTH0_OBO={**MINIMAL, "LEEWAY": 5}):
        assert obo_settings.LEEWAY == 5
        assert obo_settings.issuers == frozenset({"https://tenant.example.com/"})
        with override_settings(AUTH0_OBO={**MINIMAL, "DOMAIN": "other.example.com:8443"}):
            assert obo_settings.LEEWAY == conf.DEFAULT_LEEWAY
            assert obo_settings.issuers == frozenset({"https://other.example.com:8443/"})
        assert obo_settings.LEEWAY == 5
        assert obo_settings.primary_domain == "tenant.example.com"


def test_reload_callbacks_run_when_the_setting_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(conf, "_reload_callbacks", [*conf._reload_callbacks])
    conf.on_reload(lambda: calls.append("reloaded"))

    with override_settings(AUTH0_OBO=MINIMAL):
        assert calls == ["reloaded"]
    with override_settings(SOMETHING_ELSE=1):
        pass

    assert calls == ["reloaded", "reloaded"]


def test_domains_give_one_issuer_each_with_a_trailing_slash() -> None:
    config = {
        **MINIMAL,
        "DOMAINS": ["login.example.com", "tenant.eu.auth0.com"],
        "AUDIENCE": ["https://a.example.com", "https://b.example.com"],
    }
    with override_settings(AUTH0_OBO=config):
        assert obo_settings.domains == ("login.example.com", "tenant.eu.auth0.com")
        assert obo_settings.primary_domain == "login.example.com"
        assert obo_settings.issuers == frozenset(
            {"https://login.example.com/", "https://tenant.eu.auth0.com/"}
        )
        assert obo_settings.audiences == ("https://a.example.com", "https://b.example.com")
        assert obo_settings.resource == "https://a.example.com"


def test_resource_defaults_to_the_first_audience_unless_set() -> None:
    with override_settings(AUTH0_OBO=MINIMAL):
        assert obo_settings.resource == "https://api.example.com"
    with override_settings(AUTH0_OBO={**MINIMAL, "RESOURCE": "https://mcp.example.com/mcp"}):
        assert obo_settings.resource == "https://mcp.example.com/mcp"


def test_tls_verify_is_the_bundle_or_the_system_store(tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    with override_settings(AUTH0_OBO=MINIMAL):
        assert obo_settings.tls_verify is True
    with override_settings(AUTH0_OBO={**MINIMAL, "TLS_CA_BUNDLE": str(bundle)}):
        assert obo_settings.tls_verify == str(bundle)


def test_no_domain_at_all_is_an_error_when_one_is_needed() -> None:
    with override_settings(AUTH0_OBO={"AUDIENCE": "https://api.example.com"}):
        assert obo_settings.domains == ()
        with pytest.raises(ImproperlyConfigured, match="DOMAIN"):
            getattr(obo_settings, "primary_domain")  # noqa: B009


def test_the_user_resolver_is_imported_from_its_dotted_path() -> None:
    path = "tests.verify.test_authentication_bearer.resolve_known_user"
    with override_settings(AUTH0_OBO={**MINIMAL, "USER_RESOLVER": path}):
        from tests.verify.test_authentication_bearer import resolve_known_user

        assert obo_settings.USER_RESOLVER is resolve_known_user

"""``ParsedSetting``: the one rule for keys parsed from AUTH0_OBO (dpop_key, client_assertion)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from django_auth0_obo import client_assertion, dpop_key
from django_auth0_obo.exceptions import ConfigurationError
from django_auth0_obo.parsed_setting import ParsedSetting
from django_auth0_obo.testing import DPoPKey


def _set(settings: Any, **values: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, **values}


def test_the_value_is_parsed_once_until_the_settings_change(settings: Any) -> None:
    calls: list[Any] = []
    parsed = ParsedSetting("REALM", lambda value: calls.append(value) or f"parsed {value}")
    _set(settings, REALM="one")

    assert parsed.get() == "parsed one"
    assert parsed.get() == "parsed one"
    assert calls == ["one"]

    _set(settings, REALM="two")

    assert parsed.get() == "parsed two"
    assert calls == ["one", "two"]


def test_a_failed_parse_is_not_kept(settings: Any) -> None:
    def parse(value: Any) -> str:
        if value == "bad":
            raise ConfigurationError("REALM is bad.")
        return str(value)

    parsed = ParsedSetting("REALM", parse)
    _set(settings, REALM="bad")
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="REALM is bad"):
            parsed.get()

    parsed.forget()
    _set(settings, REALM="good")
    assert parsed.get() == "good"


def test_concurrent_first_users_parse_once(settings: Any) -> None:
    calls: list[Any] = []
    inside = threading.Event()
    release = threading.Event()

    def slow_parse(value: Any) -> str:
        calls.append(value)
        inside.set()
        release.wait(10)
        return str(value)

    parsed = ParsedSetting("REALM", slow_parse)
    _set(settings, REALM="once")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(parsed.get())) for _ in range(5)]
    threads[0].start()
    inside.wait(10)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)

    assert results == ["once"] * 5
    assert calls == ["once"]


def test_both_client_keys_are_reparsed_when_the_settings_change(settings: Any) -> None:
    def rsa_pem() -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    first_dpop, second_dpop = DPoPKey.generate(), DPoPKey.generate()
    _set(settings, DPOP_CLIENT_KEY=first_dpop.private_pem, CLIENT_ASSERTION_KEY=rsa_pem())
    assertion_key = client_assertion.load_assertion_key()
    assert dpop_key.load_client_key().jkt == first_dpop.jkt
    assert client_assertion.load_assertion_key() is assertion_key

    _set(settings, DPOP_CLIENT_KEY=second_dpop.private_pem, CLIENT_ASSERTION_KEY=rsa_pem())

    assert dpop_key.load_client_key().jkt == second_dpop.jkt
    assert client_assertion.load_assertion_key() is not assertion_key

"""Encryption of cached tokens: Fernet keys, rotation, SECRET_KEY derivation, and check E016."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import crypto
from django_auth0_obo.checks import check_settings
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import ExchangedToken
from tests.exchange_support import DOWNSTREAM, configure, user_token

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHx1c2VyIn0.c2lnbmF0dXJl"


def with_keys(settings, *keys):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "TOKEN_ENCRYPTION_KEYS": list(keys)}


def test_the_ciphertext_holds_no_trace_of_the_token(settings):
    encrypted = crypto.encrypt_token(TOKEN)

    assert TOKEN not in encrypted
    for part in TOKEN.split("."):
        assert part not in encrypted
    assert crypto.decrypt_token(encrypted) == TOKEN


def test_two_encryptions_differ(settings):
    assert crypto.encrypt_token(TOKEN) != crypto.encrypt_token(TOKEN)


def test_a_token_written_with_an_old_key_still_reads_after_rotation(settings):
    old, new = crypto.generate_key(), crypto.generate_key()
    with_keys(settings, old)
    written_before = crypto.encrypt_token(TOKEN)

    with_keys(settings, new, old)
    written_after = crypto.encrypt_token(TOKEN)

    assert crypto.decrypt_token(written_before) == TOKEN
    assert crypto.decrypt_token(written_after) == TOKEN
    with_keys(settings, new)  # the new key wrote the second one
    assert crypto.decrypt_token(written_after) == TOKEN
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_token(written_before)


def test_the_default_key_is_derived_from_secret_key(settings):
    written = crypto.encrypt_token(TOKEN)

    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_token(written)


def test_secret_key_fallbacks_keep_decrypting(settings):
    original = settings.SECRET_KEY
    written = crypto.encrypt_token(TOKEN)

    settings.SECRET_KEY = "rotated-secret-key-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = [original]

    assert crypto.decrypt_token(written) == TOKEN


def test_the_derived_key_is_not_the_secret_key_itself(settings):
    key = crypto.derive_key(settings.SECRET_KEY)

    assert settings.SECRET_KEY.encode() not in key
    assert key == crypto.derive_key(settings.SECRET_KEY)
    assert key != crypto.derive_key(settings.SECRET_KEY + "!")


def test_a_tampered_ciphertext_does_not_decrypt(settings):
    encrypted = crypto.encrypt_token(TOKEN)
    tampered = encrypted[:-5] + ("A" if encrypted[-5] != "A" else "B") + encrypted[-4:]

    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_token(tampered)


@given(st.text(min_size=1, max_size=2000))
def test_any_token_round_trips(token):
    assert crypto.decrypt_token(crypto.encrypt_token(token)) == token


def e016(settings) -> list:
    return [e for e in check_settings() if e.id == "auth0_obo.E016"]


@pytest.mark.parametrize(
    "keys",
    [[], "not-a-fernet-key", ["short"], [crypto.generate_key(), 42], {"k": "v"}, [b"\xff" * 44]],
)
def test_bad_encryption_keys_are_check_e016(settings, keys):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "TOKEN_ENCRYPTION_KEYS": keys}

    (error,) = e016(settings)
    assert "TOKEN_ENCRYPTION_KEYS" in error.msg


@pytest.mark.parametrize(
    "keys",
    [None, crypto.generate_key(), [crypto.generate_key(), crypto.generate_key()]],
    ids=["none set", "one key", "two keys"],  # a generated key is no stable test id
)
def test_good_encryption_keys_pass_the_check(settings, keys):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "TOKEN_ENCRYPTION_KEYS": keys}

    assert e016(settings) == []


@pytest.mark.django_db
def test_a_cached_token_written_before_a_key_rotation_is_still_served(auth0_tenant, settings):
    old, new = crypto.generate_key(), crypto.generate_key()
    tenant = configure(auth0_tenant, settings, TOKEN_ENCRYPTION_KEYS=[old])
    subject = user_token(tenant)
    first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    with_keys(settings, new, old)
    again = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert again["access_token"] == first["access_token"]
    assert tenant.count("token") == 1
    with_keys(settings, old)  # the row was written with the old key, and only read since
    encrypted = ExchangedToken.objects.get().encrypted_token
    assert crypto.decrypt_token(encrypted) == first["access_token"]

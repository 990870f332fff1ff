"""``auth0_obo_check`` against the local tenant, ``--tenant-config``, and ``auth0_obo_purge``."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_auth0_obo.models import DelegationEvent, ExchangedToken

pytestmark = pytest.mark.django_db

MCP_API = "https://mcp.example.com"
CALENDAR_API = "https://calendar-api.example.com"


def run(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_check_reaches_discovery_and_jwks_and_lists_key_ids(auth0_tenant):
    auth0_tenant.reset_counts()
    output = run("auth0_obo_check")
    assert f"Issuer {auth0_tenant.issuer}" in output
    assert f"key {auth0_tenant.signing_kid}: RSA RS256" in output
    assert output.rstrip().endswith("OK")
    assert auth0_tenant.count("discovery") == 1
    assert auth0_tenant.count("jwks") == 1


def test_check_lists_every_published_key_after_a_rotation(auth0_tenant):
    old = auth0_tenant.signing_kid
    new = auth0_tenant.rotate()
    output = run("auth0_obo_check")
    assert f"key {old}:" in output
    assert f"key {new}:" in output


def test_check_fails_on_settings_errors_before_touching_the_network(auth0_tenant, settings):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_MODE": "sometimes"}
    auth0_tenant.reset_counts()
    with pytest.raises(CommandError, match="settings error"):
        run("auth0_obo_check")
    assert auth0_tenant.count("discovery") == 0


@pytest.mark.parametrize(("endpoint", "message"), [("discovery", "answered 500"), ("jwks", "JWKS")])
def test_check_fails_when_the_tenant_does_not_answer(auth0_tenant, endpoint, message):
    auth0_tenant.inject_fault(endpoint, status=500, times=None)
    with pytest.raises(CommandError, match=message):
        run("auth0_obo_check")


def _small_rsa_jwk(kid: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from django_auth0_obo.testing.jwk_encoding import public_jwk

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return {**public_jwk(key), "kid": kid, "alg": "RS256", "use": "sig"}


def test_check_prints_the_keys_the_verifier_uses_and_those_it_skips_with_why(auth0_tenant):
    good = auth0_tenant.jwks()["keys"][0]
    jwks = {
        "keys": [
            good,
            _small_rsa_jwk("small"),
            {**good, "kid": "for-encryption", "use": "enc"},
            {**good, "kid": "kty-is-a-list", "kty": ["RSA"]},
            {**good, "kid": "alg-is-hmac", "alg": "HS256"},
            {**good, "kid": "alg-is-an-object", "alg": {"RS256": True}},
            {**good, "kid": "private", "d": "AQAB"},
            "not a key",
        ]
    }
    auth0_tenant.inject_fault("jwks", status=200, body=jwks, times=None)

    output = run("auth0_obo_check")

    assert f"key {good['kid']}: RSA RS256 (2048 bits); verifies RS256" in output
    for kid, reason in [
        ("small", "RSA key is too small (under 2048 bits)"),
        ("for-encryption", "not a signature key (use is not sig)"),
        ("kty-is-a-list", "jwk does not match its alg"),
        ("alg-is-hmac", "unsupported alg"),
        ("alg-is-an-object", "unsupported alg"),
        ("private", "jwk must be a public key"),
        ("#7", "not a JSON object"),
    ]:
        assert f"skipped key {kid}: {reason}" in output
    assert output.rstrip().endswith("OK")


def test_check_fails_when_the_verifier_could_use_no_published_key(auth0_tenant):
    auth0_tenant.inject_fault(
        "jwks", status=200, body={"keys": [_small_rsa_jwk("small")]}, times=None
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match="no key the verifier can use"):
        call_command("auth0_obo_check", stdout=out, stderr=io.StringIO())
    assert "skipped key small: RSA key is too small" in out.getvalue()


def test_check_says_when_a_key_fits_none_of_the_configured_algorithms(auth0_tenant, settings):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "ALGORITHMS": ["ES256"]}
    output = run("auth0_obo_check")
    assert f"key {auth0_tenant.signing_kid}: RSA RS256 (2048 bits); matches none" in output


def test_check_exchange_prints_the_result_and_never_a_token(auth0_tenant, settings, monkeypatch):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIENCE": MCP_API}
    token = auth0_tenant.mint(audience=MCP_API, sub="auth0|alice")
    output = run(
        "auth0_obo_check",
        "--exchange",
        CALENDAR_API,
        "--scope",
        "calendar:read",
        stdin=token + "\n",
        monkeypatch=monkeypatch,
    )
    assert f"Exchange for {CALENDAR_API}: OK" in output
    assert "scope: calendar:read" in output
    claims = json.loads(output.split("new token's claims (unverified): ")[1].splitlines()[0])
    assert claims["sub"] == "auth0|alice"
    assert claims["act"] == {"sub": "mcp-server-client"}
    assert token not in output
    assert "eyJ" not in output  # no JWT at all, old or new


def test_check_exchange_failure_is_a_clean_error(auth0_tenant, settings, monkeypatch):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIENCE": MCP_API}
    auth0_tenant.inject_fault(
        "token", status=403, body={"error": "access_denied", "error_description": "nope"}
    )
    token = auth0_tenant.mint(audience=MCP_API)
    with pytest.raises(CommandError, match="access_denied") as raised:
        run("auth0_obo_check", "--exchange", CALENDAR_API, stdin=token, monkeypatch=monkeypatch)
    assert token not in str(raised.value)


def test_check_exchange_needs_a_token_on_stdin(auth0_tenant, monkeypatch):
    with pytest.raises(CommandError, match="stdin"):
        run("auth0_obo_check", "--exchange", CALENDAR_API, stdin="", monkeypatch=monkeypatch)


def test_tenant_config_prints_the_custom_api_client_and_user_grants(settings):
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": MCP_API,
        "CLIENT_ID": "mcp-server-client",
        "CLIENT_SECRET": "very-secret-value",
    }
    output = run(
        "auth0_obo_check",
        "--tenant-config",
        "--audience",
        f"{CALENDAR_API}=calendar:read,calendar:write",
        "--audience",
        "https://api.example.com",
    )
    assert "very-secret-value" not in output
    yaml_part, json_part = output.split("# Management API: POST /api/v2/clients")
    assert "clients:" in yaml_part
    assert 'app_type: "resource_server"' in yaml_part
    assert f'resource_server_identifier: "{MCP_API}"' in yaml_part
    assert "allow_any_profile_of_type:\n        - on_behalf_of_token_exchange" in yaml_part
    assert yaml_part.count("subject_type: user") == 2
    assert '      - "calendar:write"' in yaml_part

    client_json, grants_json = json_part.split(
        "# Management API: POST /api/v2/client-grants (one per downstream API)"
    )
    client = json.loads(client_json)
    assert client["app_type"] == "resource_server"
    assert client["resource_server_identifier"] == MCP_API
    assert client["token_exchange"] == {
        "allow_any_profile_of_type": ["on_behalf_of_token_exchange"]
    }
    assert client["token_endpoint_auth_method"] == "client_secret_post"
    decoder = json.JSONDecoder()
    grants, rest = [], grants_json.strip()
    while rest:
        grant, end = decoder.raw_decode(rest)
        grants.append(grant)
        rest = rest[end:].strip()
    assert grants == [
        {
            "client_id": "mcp-server-client",
            "audience": CALENDAR_API,
            "scope": ["calendar:read", "calendar:write"],
            "subject_type": "user",
        },
        {
            "client_id": "mcp-server-client",
            "audience": "https://api.example.com",
            "scope": [],
            "subject_type": "user",
        },
    ]


def test_tenant_config_needs_the_downstream_audiences(settings):
    settings.AUTH0_OBO = {"DOMAIN": "tenant.example.com", "AUDIENCE": MCP_API}
    with pytest.raises(CommandError, match="--audience"):
        run("auth0_obo_check", "--tenant-config")


def cached_token(key: str, lifetime: timedelta) -> ExchangedToken:
    moment = timezone.now() + lifetime
    return ExchangedToken.objects.create(
        key=key,
        subject="auth0|alice",
        audience=CALENDAR_API,
        encrypted_token="ciphertext",
        expires_at=moment,
        cached_until=moment,
    )


def test_purge_deletes_expired_tokens_and_old_events_with_a_dry_run_first(settings):
    settings.AUTH0_OBO = {
        "DOMAIN": "tenant.example.com",
        "AUDIENCE": MCP_API,
        "AUDIT_RETENTION_DAYS": 7,
    }
    for i in range(3):
        cached_token(f"expired{i}", -timedelta(minutes=1))
    cached_token("live", timedelta(hours=1))
    old = timezone.now() - timedelta(days=8)
    for i in range(5):
        DelegationEvent.objects.create(created_at=old, subject=f"u{i}", outcome="allowed")
    DelegationEvent.objects.create(subject="recent", outcome="allowed")

    dry = run("auth0_obo_purge", "--dry-run")
    assert "Would delete 3 expired exchanged token(s)." in dry
    assert "Would delete 5 delegation event(s) older than 7 day(s)." in dry
    assert (ExchangedToken.objects.count(), DelegationEvent.objects.count()) == (4, 6)

    done = run("auth0_obo_purge", "--batch-size", "2")
    assert "Deleted 3 expired exchanged token(s)." in done
    assert "Deleted 5 delegation event(s)" in done
    assert list(ExchangedToken.objects.values_list("key", flat=True)) == ["live"]
    assert list(DelegationEvent.objects.values_list("subject", flat=True)) == ["recent"]


def test_purge_refuses_a_zero_batch_size():
    with pytest.raises(CommandError, match="batch-size"):
        run("auth0_obo_purge", "--batch-size", "0")

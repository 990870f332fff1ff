"""``auth0_obo_check --tenant-config``: the downstream APIs' settings, private_key_jwt and the
forwarded-IP trust, in Deploy CLI YAML and Management API JSON."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command

from django_auth0_obo.testing import DPoPKey

MCP_API = "https://mcp.example.com"
CALENDAR_API = "https://calendar-api.example.com"
BASE = {"DOMAIN": "tenant.example.com", "AUDIENCE": MCP_API, "CLIENT_ID": "mcp-server-client"}


def config(settings: Any, *args: str, **overrides: Any) -> str:
    settings.AUTH0_OBO = {**BASE, **overrides}
    out = io.StringIO()
    call_command(
        "auth0_obo_check",
        "--tenant-config",
        "--audience",
        f"{CALENDAR_API}=calendar:read",
        "--audience",
        "https://api.example.com",
        *args,
        stdout=out,
    )
    return out.getvalue()


def patches(output: str) -> dict[str, dict[str, Any]]:
    found = re.findall(r"PATCH /api/v2/resource-servers/<id of (\S+)>\n(\{.*\})", output)
    return {audience: json.loads(body) for audience, body in found}


def test_each_downstream_api_gets_delegated_access_and_skipped_consent(settings: Any) -> None:
    output = config(settings)
    expected = {
        "skip_consent_for_verifiable_first_party_clients": True,
        "subject_type_authorization": {"user": {"policy": "require_client_grant"}},
    }
    assert patches(output) == {CALENDAR_API: expected, "https://api.example.com": expected}
    yaml_part = output.split("# Management API")[0]
    assert "resourceServers:" in yaml_part
    assert f'  - name: "{CALENDAR_API}"\n    identifier: "{CALENDAR_API}"' in yaml_part
    assert "    skip_consent_for_verifiable_first_party_clients: true" in yaml_part
    assert '      user:\n        policy: "require_client_grant"' in yaml_part
    assert "proof_of_possession" not in output


def test_dpop_binding_requires_proof_of_possession(settings: Any) -> None:
    for output in (
        config(settings, "--dpop"),
        config(settings, DPOP_CLIENT_KEY=DPoPKey.generate().private_pem),
    ):
        for body in patches(output).values():
            assert body["proof_of_possession"] == {"mechanism": "dpop", "required": True}
        assert '    proof_of_possession:\n      mechanism: "dpop"\n      required: true' in output


def test_private_key_jwt_registers_only_the_public_key(settings: Any) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    output = config(
        settings, CLIENT_AUTH_METHOD="private_key_jwt", CLIENT_ASSERTION_KEY=private_pem
    )
    assert "PRIVATE KEY" not in output
    client_json = output.split("# Management API: POST /api/v2/clients")[1].split("# Management")[0]
    client = json.loads(client_json)
    assert "token_endpoint_auth_method" not in client
    (credential,) = client["client_authentication_methods"]["private_key_jwt"]["credentials"]
    assert credential["pem"] == public_pem
    assert credential["credential_type"] == "public_key"
    assert credential["alg"] == "RS256"
    assert json.dumps(public_pem) in output.split("# Management API")[0]  # in the YAML too


def test_forwarding_the_users_ip_trusts_the_header(settings: Any) -> None:
    output = config(settings, FORWARD_USER_IP=True)
    assert "    token_endpoint_ip_header_trusted: true" in output
    assert '"token_endpoint_ip_header_trusted": true' in output
    assert "token_endpoint_ip_header_trusted" not in config(settings)


@pytest.mark.parametrize("flag", [[], ["--dpop"]])
def test_no_secret_ever_appears(settings: Any, flag: list[str]) -> None:
    output = config(settings, *flag, CLIENT_SECRET="very-secret-value")
    assert "very-secret-value" not in output

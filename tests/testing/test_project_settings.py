"""The testing helpers keep the project's own ``AUTH0_OBO`` and swap only the tenant: the pytest
fixture, the ``TestCase`` mixin, and ``python -m django_auth0_obo.testing`` for manual use."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import TestCase, override_settings

from django_auth0_obo import tokens
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.testing import CALENDAR_API, DEFAULT_CLIENT_ID, DPoPKey, LocalTenant
from django_auth0_obo.testing.testcase import Auth0TenantMixin, tenant_settings

WHOAMI = "/api/whoami"
PROJECT_API = "https://orders.example.com"
MINT = [sys.executable, "-m", "django_auth0_obo.testing", "--mint"]


@pytest.fixture
def dpop_required_project(settings: Any, request: pytest.FixtureRequest) -> LocalTenant:
    """A project that demands DPoP, then the fixture under test on top of it."""
    settings.AUTH0_OBO = {
        "DOMAIN": "real-tenant.us.auth0.com",
        "AUDIENCE": [PROJECT_API],
        "DPOP_MODE": "required",
        "AUDIT": "off",
    }
    return request.getfixturevalue("auth0_tenant")


@pytest.mark.django_db
def test_the_fixture_keeps_the_projects_dpop_mode(
    dpop_required_project: LocalTenant, api_client: Any, dpop_key: DPoPKey, settings: Any
) -> None:
    tenant = dpop_required_project
    assert settings.AUTH0_OBO["DPOP_MODE"] == "required"
    assert settings.AUTH0_OBO["AUDIENCE"] == [PROJECT_API]
    assert settings.AUTH0_OBO["DOMAIN"] == tenant.domain

    bearer = api_client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {tenant.mint()}")
    assert bearer.status_code == 401  # the project refuses Bearer; so must its tests

    token = tenant.mint(cnf_jkt=dpop_key.jkt)  # minted for the project's own audience
    proof = dpop_key.proof("GET", f"http://testserver{WHOAMI}", access_token=token)
    dpop = api_client.get(WHOAMI, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert dpop.status_code == 200, dpop.content


CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "DOMAINS replaced by the stand-in's DOMAIN": (
        {"DOMAINS": ["a.example.com", "b.example.com"], "AUDIENCE": PROJECT_API},
        {"DOMAINS": None},
    ),
    "a resolver for DOMAINS replaced too": (
        {"DOMAINS": "myproject.tenants.resolve", "AUDIENCE": PROJECT_API},
        {"DOMAINS": None},
    ),
    "no CLIENT_ID: the stand-in's OBO client": (
        {"DOMAIN": "x.auth0.com", "AUDIENCE": PROJECT_API},
        {"CLIENT_ID": DEFAULT_CLIENT_ID},
    ),
    "the project's settings kept": (
        {"DOMAIN": "x.auth0.com", "AUDIENCE": PROJECT_API, "LEEWAY": 7, "AUDIT": "all"},
        {"LEEWAY": 7, "AUDIT": "all", "AUDIENCE": PROJECT_API},
    ),
    "no AUDIENCE: the stand-in's": ({"DOMAIN": "x.auth0.com"}, {"AUDIENCE": "DEFAULT"}),
}


@pytest.mark.parametrize(("project", "expected"), list(CASES.values()), ids=list(CASES))
def test_tenant_settings_swap_only_what_points_at_the_tenant(
    auth0_tenant_server: LocalTenant, project: dict[str, Any], expected: dict[str, Any]
) -> None:
    tenant = auth0_tenant_server
    tenant.reset()
    try:
        conf = tenant_settings(tenant, project)
    finally:
        default_audience = tenant.default_audience
        tenant.reset()
    assert conf["DOMAIN"] == tenant.domain
    assert conf["TLS_CA_BUNDLE"] == tenant.ca_bundle
    for key, value in expected.items():
        if value == "DEFAULT":
            assert conf[key] == default_audience
        else:
            assert conf.get(key) == value, key


@pytest.mark.django_db
def test_the_projects_own_client_can_exchange_against_the_stand_in(
    auth0_tenant_server: LocalTenant, settings: Any
) -> None:
    tenant = auth0_tenant_server
    tenant.reset()
    project = {
        "DOMAIN": "real.us.auth0.com",
        "AUDIENCE": PROJECT_API,
        "CLIENT_ID": "orders-api-client",
        "CLIENT_SECRET": "the-projects-real-secret",
        "AUDIT": "off",
    }
    try:
        settings.AUTH0_OBO = tenant_settings(tenant, project)
        assert settings.AUTH0_OBO["CLIENT_ID"] == "orders-api-client"

        result = get_token_on_behalf_of(tenant.mint(scope="read:data"), CALENDAR_API)

        claims = tenant.verify(result["access_token"], audience=CALENDAR_API)
        assert claims["act"] == {"sub": "orders-api-client"}
    finally:
        tenant.reset()


@override_settings(
    AUTH0_OBO={"DOMAIN": "real.us.auth0.com", "AUDIENCE": PROJECT_API, "DPOP_MODE": "required"}
)
class MixinTests(Auth0TenantMixin, TestCase):
    """Django's test runner: the mixin gives the same tenant, with the project's settings."""

    def test_the_mixin_points_the_projects_settings_at_a_running_tenant(self) -> None:
        from django.conf import settings

        assert settings.AUTH0_OBO["DOMAIN"] == self.auth0_tenant.domain
        assert settings.AUTH0_OBO["DPOP_MODE"] == "required"
        token = self.auth0_tenant.mint(sub="auth0|alice")
        assert tokens.verify_access_token(token)["sub"] == "auth0|alice"

    def test_bearer_is_refused_as_the_project_says(self) -> None:
        token = self.auth0_tenant.mint()
        response = self.client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401


# python -m django_auth0_obo.testing --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def command_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DJANGO_AUTH0_OBO_STATE": str(tmp_path / "state")}


def serve(env: dict[str, str], port: int) -> Iterator[tuple[dict[str, Any], str]]:
    command = [sys.executable, "-m", "django_auth0_obo.testing", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--scope", "read:data"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        text = ""
        while "More tokens" not in text:
            line = process.stdout.readline()
            assert line, "the command stopped before printing its instructions"
            text += line
        yield info, text
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_command_prints_settings_a_token_and_mints_more(
    command_env: dict[str, str], tmp_path: Path, settings: Any
) -> None:
    port = free_port()
    secrets_seen = []
    for _ in range(2):  # twice: what was pasted the first time still works the second
        for info, text in serve(command_env, port):
            stable_ca = tmp_path / "state" / "ca.pem"
            assert info["stable_ca_bundle"] == str(stable_ca)
            assert stable_ca.read_bytes() == Path(info["ca_bundle"]).read_bytes()
            assert f'"TLS_CA_BUNDLE": "{stable_ca}"' in text
            assert f'"DOMAIN": "127.0.0.1:{port}"' in text
            assert "curl -H" in text
            secrets_seen.append(info["client_secret"])
            settings.AUTH0_OBO = {
                "DOMAIN": info["domain"],
                "AUDIENCE": info["audience"],
                "TLS_CA_BUNDLE": str(stable_ca),
                "AUDIT": "off",
            }
            printed = next(line for line in text.splitlines() if line.startswith("eyJ"))
            assert tokens.verify_access_token(printed.strip())["scope"] == "read:data"

            minted = subprocess.run(
                [
                    *MINT,
                    "--sub",
                    "auth0|bob",
                    "--scope",
                    "calendar:read",
                    "--act",
                    DEFAULT_CLIENT_ID,
                ],
                env=command_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout.strip()
            claims = tokens.verify_access_token(minted)
            assert (claims["sub"], claims["scope"]) == ("auth0|bob", "calendar:read")
            assert claims["act"] == {"sub": DEFAULT_CLIENT_ID}
            discovery = requests.get(
                f"https://{info['domain']}/.well-known/openid-configuration",
                verify=str(stable_ca),
                timeout=5,
            )
            assert discovery.json()["issuer"] == info["issuer"]
        tokens.clear_memo()
        from django_auth0_obo import keys

        keys.clear_cache()
    assert secrets_seen[0] == secrets_seen[1]
    assert not (tmp_path / "state" / "signing-key.json").exists()  # removed when it stops
    assert oct((tmp_path / "state" / "client-secret").stat().st_mode & 0o777) == "0o600"


def test_mint_without_a_running_stand_in_says_so(command_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "django_auth0_obo.testing", "--mint"],
        env=command_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "start one first" in result.stderr

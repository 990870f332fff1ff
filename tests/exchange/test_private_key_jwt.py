"""private_key_jwt client authentication (RFC 7523) against the stand-in over real HTTPS."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_auth0_obo import client_assertion
from django_auth0_obo.checks import check_settings
from django_auth0_obo.exceptions import ConfigurationError, TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.testing.config import CALENDAR_API, MCP_API
from django_auth0_obo.testing.jwk_encoding import private_jwk
from tests.exchange_support import DOWNSTREAM, user_token

pytestmark = pytest.mark.django_db

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PKJ_CLIENT = "mcp-pkj-client"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def tenant(auth0_tenant: Any, settings: Any, rsa_key: rsa.RSAPrivateKey) -> Any:
    """A Custom API client that may ONLY authenticate with private_key_jwt; no secret set."""
    auth0_tenant.add_client(
        PKJ_CLIENT,
        api=MCP_API,
        grants={CALENDAR_API: ("calendar:read", "calendar:write")},
        auth_method="private_key_jwt",
        public_key=rsa_key.public_key(),
    )
    overrides = auth0_tenant.django_settings(audience=MCP_API)
    del overrides["CLIENT_SECRET"]
    overrides.update(
        CLIENT_ID=PKJ_CLIENT,
        CLIENT_AUTH_METHOD="private_key_jwt",
        CLIENT_ASSERTION_KEY=pem(rsa_key),
    )
    settings.AUTH0_OBO = overrides
    return auth0_tenant


def test_an_exchange_authenticates_with_a_signed_assertion_and_no_secret(tenant: Any) -> None:
    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")

    assert jwt.decode(result["access_token"], options={"verify_signature": False})["act"] == {
        "sub": PKJ_CLIENT
    }
    (request,) = tenant.token_requests
    assert request.auth_method == "private_key_jwt"
    assert request.status == 200
    assert "client_secret" not in request.form
    assert request.form["client_assertion_type"] == ASSERTION_TYPE
    assert request.form["client_assertion"] == "[redacted]"


def test_the_assertion_follows_rfc_7523(tenant: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    before = int(time.time())
    assertion = client_assertion.make_assertion(PKJ_CLIENT, tenant.token_endpoint)

    header = jwt.get_unverified_header(assertion)
    claims = jwt.decode(
        assertion, rsa_key.public_key(), algorithms=["RS256"], audience=tenant.token_endpoint
    )
    assert header["alg"] == "RS256"
    assert claims["iss"] == claims["sub"] == PKJ_CLIENT
    assert before <= claims["iat"] <= claims["exp"] - 1
    assert claims["exp"] - claims["iat"] <= 60
    other = jwt.decode(
        client_assertion.make_assertion(PKJ_CLIENT, tenant.token_endpoint),
        options={"verify_signature": False},
    )
    assert other["jti"] != claims["jti"]


def test_a_jwk_key_works_and_its_kid_is_sent(
    tenant: Any, settings: Any, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwk = {**private_jwk(rsa_key), "kid": "pkj-1"}
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "CLIENT_ASSERTION_KEY": jwk}

    assertion = client_assertion.make_assertion(PKJ_CLIENT, tenant.token_endpoint)
    assert jwt.get_unverified_header(assertion)["kid"] == "pkj-1"
    assert get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)["access_token"]


def test_every_attempt_signs_a_new_assertion(tenant: Any) -> None:
    tenant.inject_fault("token", 503)
    get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")

    faulted, answered = tenant.token_requests
    assert faulted.status == 503
    assert answered.status == 200  # the retry was not a replay


def test_a_key_the_tenant_does_not_know_is_invalid_client(tenant: Any, settings: Any) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "CLIENT_ASSERTION_KEY": pem(stranger)}

    with pytest.raises(TokenExchangeError) as caught:
        get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)
    assert (caught.value.error, caught.value.status_code) == ("invalid_client", 401)


def test_a_secret_is_refused_for_a_private_key_jwt_client(tenant: Any, settings: Any) -> None:
    settings.AUTH0_OBO = {
        **settings.AUTH0_OBO,
        "CLIENT_AUTH_METHOD": "client_secret_post",
        "CLIENT_SECRET": tenant.clients[PKJ_CLIENT].secret,
    }
    with pytest.raises(TokenExchangeError) as caught:
        get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)
    assert caught.value.error == "invalid_client"


def _post_assertion(tenant: Any, assertion: str, **extra: str) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "audience": CALENDAR_API,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
    return requests.post(tenant.token_endpoint, data=form, verify=tenant.ca_bundle, timeout=10)


class FromNow(int):
    """A time claim given as seconds from when the assertion is signed, not from collection."""


def _sign(key: rsa.RSAPrivateKey, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": PKJ_CLIENT, "sub": PKJ_CLIENT, "iat": now, "exp": now + 60, "jti": "j-1"}
    body.update({k: now + v if isinstance(v, FromNow) else v for k, v in claims.items()})
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg)


def test_the_stand_in_refuses_a_replayed_assertion(tenant: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    assertion = _sign(rsa_key, aud=tenant.token_endpoint, jti="once-only")

    assert _post_assertion(tenant, assertion).status_code == 200
    replayed = _post_assertion(tenant, assertion)
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_client"
    assert "already used" in replayed.json()["error_description"]


@pytest.mark.parametrize(
    ("why", "claims", "alg"),
    [
        ("audience is another server", {"aud": "https://elsewhere.example/oauth/token"}, "RS256"),
        ("no audience", {"aud": None}, "RS256"),
        ("expired", {"exp": FromNow(-3600)}, "RS256"),
        ("no exp", {"exp": None}, "RS256"),
        ("exp an hour ahead: not short-lived", {"exp": FromNow(3600)}, "RS256"),
        ("no jti", {"jti": None}, "RS256"),
        ("sub is not the client", {"sub": "someone-else"}, "RS256"),
        ("iss is not a known client", {"iss": "nobody"}, "RS256"),
        ("algorithm Auth0 does not accept", {}, "RS512"),
    ],
)
def test_the_stand_in_refuses_bad_assertions(
    tenant: Any, rsa_key: rsa.RSAPrivateKey, why: str, claims: dict[str, Any], alg: str
) -> None:
    claims = {"aud": tenant.token_endpoint, "jti": f"bad-{why}", **claims}
    response = _post_assertion(tenant, _sign(rsa_key, alg, **claims))
    assert response.status_code == 401, why
    assert response.json()["error"] == "invalid_client", why


def test_the_stand_in_accepts_the_issuer_as_audience(
    tenant: Any, rsa_key: rsa.RSAPrivateKey
) -> None:
    response = _post_assertion(tenant, _sign(rsa_key, aud=tenant.issuer, jti="iss-aud"))
    assert response.status_code == 200


def test_the_stand_in_refuses_a_wrong_assertion_type(
    tenant: Any, rsa_key: rsa.RSAPrivateKey
) -> None:
    assertion = _sign(rsa_key, aud=tenant.token_endpoint, jti="type")
    response = _post_assertion(tenant, assertion, client_assertion_type="urn:other")
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_the_stand_in_refuses_to_register_a_small_key(auth0_tenant: Any) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048"):
        auth0_tenant.add_client("small", public_key=small.public_key())


# -- configuration ---------------------------------------------------------------------------


def _ids(settings: Any, **overrides: Any) -> set[str]:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, **overrides}
    return {message.id for message in check_settings()}


@pytest.mark.parametrize(
    ("why", "value"),
    [
        ("not a key", "not a pem"),
        ("an EC key", "ec"),
        ("a 1024-bit RSA key", "small"),
        ("a public JWK", "public-jwk"),
        ("broken JSON", "{nope"),
        ("a number", 42),
    ],
)
def test_a_bad_assertion_key_is_E035(tenant: Any, settings: Any, why: str, value: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    if value == "ec":
        value = (
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode()
        )
    elif value == "small":
        value = pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    elif value == "public-jwk":
        full = private_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        value = {k: full[k] for k in ("kty", "n", "e")}
    assert "auth0_obo.E035" in _ids(settings, CLIENT_ASSERTION_KEY=value), why


def test_private_key_jwt_without_a_key_or_client_id_fails_the_checks(
    tenant: Any, settings: Any
) -> None:
    ids = _ids(settings, CLIENT_ASSERTION_KEY=None, CLIENT_ID=None)
    assert {"auth0_obo.E036", "auth0_obo.E037"} <= ids
    with pytest.raises(ConfigurationError):
        get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)


def test_a_good_configuration_passes_the_checks(tenant: Any) -> None:
    assert not [m for m in check_settings() if m.id in {f"auth0_obo.E0{n}" for n in range(35, 45)}]
    try:
        call_command("check", "--fail-level", "ERROR")
    except SystemCheckError as error:  # pragma: no cover - shows which check failed
        pytest.fail(str(error))

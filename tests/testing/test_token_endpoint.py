"""The stand-in's /oauth/token: client auth, on-behalf-of exchange, DPoP, Token Vault, faults."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests

from django_auth0_obo.testing import (
    CALENDAR_API,
    DEFAULT_AUDIENCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CONNECTION,
    GRANT_FEDERATED,
    GRANT_TOKEN_EXCHANGE,
    MCP_API,
    TOKEN_TYPE_ACCESS_TOKEN,
    TOKEN_TYPE_FEDERATED,
    DPoPKey,
    ExchangeProfileError,
    LocalTenant,
    decode_unverified,
)


def _exchange_form(subject_token: str, audience: str | None, scope: str | None = None) -> dict:
    form = {
        "grant_type": GRANT_TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": TOKEN_TYPE_ACCESS_TOKEN,
        "requested_token_type": TOKEN_TYPE_ACCESS_TOKEN,
    }
    if audience is not None:
        form["audience"] = audience
    if scope is not None:
        form["scope"] = scope
    return form


def _post(
    http: requests.Session,
    tenant: LocalTenant,
    form: Mapping[str, str],
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    secret: str | None = None,
    auth: str = "post",
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    secret = tenant.clients[client_id].secret if secret is None else secret
    data = dict(form)
    all_headers = dict(headers or {})
    if auth == "post":
        data.update(client_id=client_id, client_secret=secret)
    elif auth == "basic":
        raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
        all_headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    return http.post(tenant.token_endpoint, data=data, headers=all_headers, timeout=10)


def _obo(
    http: requests.Session,
    tenant: LocalTenant,
    audience: str | None = CALENDAR_API,
    scope: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    subject = kwargs.pop("subject", None) or tenant.mint(audience=MCP_API)
    return _post(http, tenant, _exchange_form(subject, audience, scope), **kwargs)


def _error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


# -- on-behalf-of ---------------------------------------------------------------------------


def test_on_behalf_of_exchange_issues_a_delegated_token(
    tenant: LocalTenant, http: requests.Session
) -> None:
    subject = tenant.mint(sub="auth0|alice", audience=MCP_API, org_id="org_1")

    response = _obo(http, tenant, subject=subject)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "issued_token_type", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["issued_token_type"] == TOKEN_TYPE_ACCESS_TOKEN
    assert body["scope"] == "calendar:read calendar:write"
    claims = tenant.verify(body["access_token"], audience=CALENDAR_API)
    assert claims["sub"] == "auth0|alice"
    assert claims["aud"] == CALENDAR_API
    assert claims["azp"] == DEFAULT_CLIENT_ID
    assert claims["act"] == {"sub": DEFAULT_CLIENT_ID}
    assert claims["org_id"] == "org_1"
    assert claims["scope"] == "calendar:read calendar:write"
    assert claims["exp"] - claims["iat"] == 3600
    assert "cnf" not in claims


def test_existing_act_is_nested_inside_the_new_actor(
    tenant: LocalTenant, http: requests.Session
) -> None:
    prior = {"sub": "agent-b", "act": {"sub": "agent-a"}}
    subject = tenant.mint(audience=MCP_API, act=prior)

    body = _obo(http, tenant, subject=subject).json()

    _, claims = decode_unverified(body["access_token"])
    assert claims["act"] == {"sub": DEFAULT_CLIENT_ID, "act": prior}


def _chain(depth: int) -> dict[str, Any] | None:
    act: dict[str, Any] | None = None
    for level in range(1, depth + 1):
        act = {"sub": f"a{level}", **({"act": act} if act else {})}
    return act


@pytest.mark.parametrize(
    ("subject_depth", "limit", "expected"),
    [
        (4, None, 200),  # the exchange makes a chain of 5: Auth0's documented limit
        (5, None, 400),  # a sixth level is refused with invalid_request
        (3, 3, 400),
        (5, 6, 200),
    ],
)
def test_delegation_depth_is_limited_to_auth0s_five_levels(
    tenant: LocalTenant,
    http: requests.Session,
    subject_depth: int,
    limit: int | None,
    expected: int,
) -> None:
    if limit is not None:
        tenant.max_delegation_depth = limit
    subject = tenant.mint(audience=MCP_API, act=_chain(subject_depth))

    response = _obo(http, tenant, subject=subject)

    assert response.status_code == expected
    if expected == 400:
        assert response.json()["error"] == "invalid_request"


def test_the_default_depth_limit_is_the_apps_default_max_delegation_depth(
    tenant: LocalTenant,
) -> None:
    from django_auth0_obo.conf import DEFAULTS

    assert tenant.max_delegation_depth == DEFAULTS["MAX_DELEGATION_DEPTH"] == 5


def test_malformed_act_in_the_subject_token_is_refused(
    tenant: LocalTenant, http: requests.Session
) -> None:
    subject = tenant.mint(audience=MCP_API, act={"client": "no-sub"})

    assert _error(_obo(http, tenant, subject=subject)) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("scope", "expected_scope"),
    [
        (None, "calendar:read calendar:write"),
        ("calendar:read", None),
        ("calendar:read calendar:delete", "calendar:read"),
        ("calendar:write calendar:read", None),
    ],
)
def test_scopes_are_intersected_with_the_grant_and_echoed_only_when_different(
    tenant: LocalTenant, http: requests.Session, scope: str | None, expected_scope: str | None
) -> None:
    body = _obo(http, tenant, scope=scope).json()

    assert body.get("scope") == expected_scope
    granted = decode_unverified(body["access_token"])[1]["scope"]
    assert set(granted.split()) == set((expected_scope or scope or "").split())


def test_no_granted_scope_at_all_is_invalid_scope(
    tenant: LocalTenant, http: requests.Session
) -> None:
    assert _error(_obo(http, tenant, scope="calendar:delete")) == (400, "invalid_scope")


def test_exchange_lifetime_is_configurable(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.exchange_token_lifetime = 120

    assert _obo(http, tenant).json()["expires_in"] == 120


@pytest.mark.parametrize(
    ("subject_kwargs", "expected"),
    [
        ({"audience": DEFAULT_AUDIENCE}, (401, "invalid_grant")),
        ({"audience": MCP_API, "expires_in": -60}, (401, "invalid_grant")),
        ({"audience": MCP_API, "issuer": "https://elsewhere.example.com/"}, (401, "invalid_grant")),
        ({"audience": MCP_API, "omit": ["sub"]}, (401, "invalid_grant")),
        ({"audience": MCP_API, "algorithm": "HS256"}, (401, "invalid_grant")),
        ({"audience": MCP_API, "claims": {"gty": "client-credentials"}}, (400, "invalid_grant")),
    ],
)
def test_bad_subject_tokens_are_refused(
    tenant: LocalTenant,
    http: requests.Session,
    subject_kwargs: dict[str, Any],
    expected: tuple[int, str],
) -> None:
    subject = tenant.mint(**subject_kwargs)

    assert _error(_obo(http, tenant, subject=subject)) == expected


def test_subject_token_signed_by_an_unpublished_key_is_refused(
    tenant: LocalTenant, http: requests.Session
) -> None:
    subject = tenant.mint(audience=MCP_API, kid=tenant.unpublished_key())

    assert _error(_obo(http, tenant, subject=subject)) == (401, "invalid_grant")


def test_audience_is_required(tenant: LocalTenant, http: requests.Session) -> None:
    assert _error(_obo(http, tenant, audience=None)) == (400, "invalid_request")


def test_unknown_audience_is_invalid_target(tenant: LocalTenant, http: requests.Session) -> None:
    assert _error(_obo(http, tenant, audience="https://nowhere")) == (400, "invalid_target")


def test_audience_without_a_grant_is_access_denied(
    tenant: LocalTenant, http: requests.Session
) -> None:
    tenant.add_api("https://billing.example.com", ["billing:read"])

    response = _obo(http, tenant, audience="https://billing.example.com")

    assert _error(response) == (403, "access_denied")


def test_clients_without_obo_are_unauthorized(tenant: LocalTenant, http: requests.Session) -> None:
    response = _obo(http, tenant, client_id="client-app")

    assert _error(response) == (403, "unauthorized_client")


def test_requested_token_type_is_required(tenant: LocalTenant, http: requests.Session) -> None:
    form = _exchange_form(tenant.mint(audience=MCP_API), CALENDAR_API)
    del form["requested_token_type"]

    assert _error(_post(http, tenant, form)) == (400, "invalid_request")


def test_never_returns_id_or_refresh_tokens(tenant: LocalTenant, http: requests.Session) -> None:
    body = _obo(http, tenant, scope="openid offline_access calendar:read").json()

    assert "id_token" not in body
    assert "refresh_token" not in body


def test_custom_clients_and_apis(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.add_api("https://agent.example.com", ["agent:run"], allow_dpop=False)
    tenant.add_api("https://tools.example.com", ["tools:use"])
    tenant.add_client(
        "agent-client",
        "agent-secret",
        api="https://agent.example.com",
        grants={"https://tools.example.com": ["tools:use"]},
    )
    subject = tenant.mint(audience="https://agent.example.com")

    response = _obo(
        http,
        tenant,
        audience="https://tools.example.com",
        subject=subject,
        client_id="agent-client",
    )

    assert response.status_code == 200
    assert decode_unverified(response.json()["access_token"])[1]["act"] == {"sub": "agent-client"}


# -- client authentication ------------------------------------------------------------------


def test_client_secret_basic_is_accepted_and_url_decoded(
    tenant: LocalTenant, http: requests.Session
) -> None:
    tenant.add_client("odd:client", "p@ss:w+rd/=", api=MCP_API, grants={CALENDAR_API: ["x"]})
    tenant.apis[CALENDAR_API].scopes += ("x",)

    response = _obo(http, tenant, client_id="odd:client", auth="basic")

    assert response.status_code == 200
    record = tenant.token_requests[-1]
    assert record.auth_method == "client_secret_basic"
    assert record.client_id == "odd:client"
    assert record.headers["authorization"] == "[redacted]"


def test_client_secret_post_is_recorded_with_the_secret_redacted(
    tenant: LocalTenant, http: requests.Session
) -> None:
    subject = tenant.mint(audience=MCP_API)

    _obo(http, tenant, subject=subject, scope="calendar:read")

    (record,) = tenant.token_requests
    assert record.auth_method == "client_secret_post"
    assert record.grant_type == GRANT_TOKEN_EXCHANGE
    assert record.audience == CALENDAR_API
    assert record.scope == "calendar:read"
    assert record.subject_token == subject
    assert record.form["client_secret"] == "[redacted]"
    assert tenant.clients[DEFAULT_CLIENT_ID].secret not in repr(record)
    assert record.status == 200
    assert not record.dpop


@pytest.mark.parametrize("auth", ["post", "basic"])
def test_a_wrong_secret_is_invalid_client(
    tenant: LocalTenant, http: requests.Session, auth: str
) -> None:
    response = _obo(http, tenant, secret="wrong", auth=auth)

    assert _error(response) == (401, "invalid_client")
    assert tenant.token_requests[-1].error == "invalid_client"


def test_unknown_clients_and_missing_credentials_are_invalid_client(
    tenant: LocalTenant, http: requests.Session
) -> None:
    assert _error(_obo(http, tenant, client_id="ghost", secret="x")) == (401, "invalid_client")
    assert _error(_obo(http, tenant, auth="none")) == (401, "invalid_client")


def test_two_authentication_methods_at_once_are_refused(
    tenant: LocalTenant, http: requests.Session
) -> None:
    secret = tenant.client_secret
    raw = base64.b64encode(f"{DEFAULT_CLIENT_ID}:{secret}".encode()).decode()

    response = _obo(http, tenant, headers={"Authorization": f"Basic {raw}"})

    assert _error(response) == (400, "invalid_request")


def test_a_client_restricted_to_basic_refuses_post(
    tenant: LocalTenant, http: requests.Session
) -> None:
    tenant.add_client(
        "basic-only",
        "s",
        api=MCP_API,
        grants={CALENDAR_API: ["calendar:read"]},
        auth_method="client_secret_basic",
    )

    assert _error(_obo(http, tenant, client_id="basic-only")) == (401, "invalid_client")
    assert _obo(http, tenant, client_id="basic-only", auth="basic").ok


def test_json_bodies_are_accepted(tenant: LocalTenant, http: requests.Session) -> None:
    form = _exchange_form(tenant.mint(audience=MCP_API), CALENDAR_API)
    form.update(client_id=DEFAULT_CLIENT_ID, client_secret=tenant.client_secret)

    assert http.post(tenant.token_endpoint, json=form, timeout=5).status_code == 200


def test_unsupported_and_missing_grant_types(tenant: LocalTenant, http: requests.Session) -> None:
    assert _error(_post(http, tenant, {"grant_type": "password"})) == (
        400,
        "unsupported_grant_type",
    )
    assert _error(_post(http, tenant, {})) == (400, "invalid_request")


# -- client credentials -----------------------------------------------------------------------


def test_client_credentials(tenant: LocalTenant, http: requests.Session) -> None:
    form = {"grant_type": "client_credentials", "audience": CALENDAR_API}

    body = _post(http, tenant, form).json()

    claims = tenant.verify(body["access_token"], audience=CALENDAR_API)
    assert claims["sub"] == f"{DEFAULT_CLIENT_ID}@clients"
    assert claims["gty"] == "client-credentials"
    assert claims["azp"] == DEFAULT_CLIENT_ID
    assert body["scope"] == "calendar:read calendar:write"
    assert body["token_type"] == "Bearer"


def test_client_credentials_requires_an_audience(
    tenant: LocalTenant, http: requests.Session
) -> None:
    assert _error(_post(http, tenant, {"grant_type": "client_credentials"})) == (
        400,
        "invalid_request",
    )


def test_client_credentials_tokens_cannot_be_exchanged(
    tenant: LocalTenant, http: requests.Session
) -> None:
    tenant.clients["client-app"].grants[MCP_API] = ("mcp:read",)
    form = {"grant_type": "client_credentials", "audience": MCP_API}
    machine_token = _post(http, tenant, form, client_id="client-app").json()["access_token"]

    assert _error(_obo(http, tenant, subject=machine_token)) == (400, "invalid_grant")


# -- DPoP -----------------------------------------------------------------------------------


def test_a_dpop_proof_binds_the_issued_token(tenant: LocalTenant, http: requests.Session) -> None:
    key = DPoPKey.generate()

    response = _obo(http, tenant, headers={"DPoP": key.proof("POST", tenant.token_endpoint)})

    body = response.json()
    assert body["token_type"] == "DPoP"
    assert decode_unverified(body["access_token"])[1]["cnf"] == {"jkt": key.jkt}
    assert tenant.token_requests[-1].dpop


def test_apis_without_dpop_get_bearer_tokens(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.apis[CALENDAR_API].allow_dpop = False
    key = DPoPKey.generate()

    body = _obo(http, tenant, headers={"DPoP": key.proof("POST", tenant.token_endpoint)}).json()

    assert body["token_type"] == "Bearer"
    assert "cnf" not in decode_unverified(body["access_token"])[1]


@pytest.mark.parametrize(
    "proof_kwargs",
    [
        {"method": "GET"},
        {"url": "https://127.0.0.1/oauth/token"},
        {"headers": {"typ": "JWT"}},
        {"iat": 1},
    ],
)
def test_bad_proofs_are_invalid_dpop_proof(
    tenant: LocalTenant, http: requests.Session, proof_kwargs: dict[str, Any]
) -> None:
    key = DPoPKey.generate()
    method = proof_kwargs.pop("method", "POST")
    url = proof_kwargs.pop("url", tenant.token_endpoint)

    response = _obo(http, tenant, headers={"DPoP": key.proof(method, url, **proof_kwargs)})

    assert _error(response) == (400, "invalid_dpop_proof")


def test_unsupported_proof_algorithms_are_refused(
    tenant: LocalTenant, http: requests.Session
) -> None:
    key = DPoPKey.generate("EdDSA")
    response = _obo(http, tenant, headers={"DPoP": key.proof("POST", tenant.token_endpoint)})
    assert _error(response) == (400, "invalid_dpop_proof")

    tenant.dpop_algorithms = ("ES256", "EdDSA")
    assert _obo(http, tenant, headers={"DPoP": key.proof("POST", tenant.token_endpoint)}).ok


def test_replayed_proofs_are_refused(tenant: LocalTenant, http: requests.Session) -> None:
    proof = DPoPKey.generate().proof("POST", tenant.token_endpoint)

    assert _obo(http, tenant, headers={"DPoP": proof}).ok
    assert _error(_obo(http, tenant, headers={"DPoP": proof})) == (400, "invalid_dpop_proof")


def test_the_nonce_dance(tenant: LocalTenant, http: requests.Session) -> None:
    nonce = tenant.require_dpop_nonce()
    key = DPoPKey.generate()

    first = _obo(http, tenant, headers={"DPoP": key.proof("POST", tenant.token_endpoint)})
    assert _error(first) == (400, "use_dpop_nonce")
    assert first.headers["DPoP-Nonce"] == nonce

    proof = key.proof("POST", tenant.token_endpoint, nonce=first.headers["DPoP-Nonce"])
    second = _obo(http, tenant, headers={"DPoP": proof})
    assert second.status_code == 200
    assert second.json()["token_type"] == "DPoP"

    tenant.rotate_dpop_nonce()
    proof = key.proof("POST", tenant.token_endpoint, nonce=nonce)
    assert _error(_obo(http, tenant, headers={"DPoP": proof})) == (400, "use_dpop_nonce")


def test_no_nonce_is_demanded_without_dpop(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.require_dpop_nonce()

    assert _obo(http, tenant).json()["token_type"] == "Bearer"


# -- Token Vault and Custom Token Exchange ---------------------------------------------------


def _vault_form(subject: str, connection: str = DEFAULT_CONNECTION, **extra: str) -> dict:
    return {
        "grant_type": GRANT_FEDERATED,
        "subject_token": subject,
        "subject_token_type": TOKEN_TYPE_ACCESS_TOKEN,
        "requested_token_type": TOKEN_TYPE_FEDERATED,
        "connection": connection,
        **extra,
    }


def test_token_vault_returns_a_federated_token(tenant: LocalTenant, http: requests.Session) -> None:
    subject = tenant.mint(sub="auth0|alice", audience=MCP_API)

    body = _post(http, tenant, _vault_form(subject, login_hint="alice@example.com")).json()

    assert body["issued_token_type"] == TOKEN_TYPE_FEDERATED
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert "calendar.events" in body["scope"]
    issued = tenant.federated_tokens[body["access_token"]]
    assert (issued.connection, issued.sub, issued.login_hint) == (
        DEFAULT_CONNECTION,
        "auth0|alice",
        "alice@example.com",
    )


def test_token_vault_errors(tenant: LocalTenant, http: requests.Session) -> None:
    subject = tenant.mint(audience=MCP_API)
    tenant.add_connection("github", ["repo"], users=["auth0|someone-else"])

    assert _error(_post(http, tenant, _vault_form(subject, "nope"))) == (400, "invalid_target")
    assert _error(_post(http, tenant, _vault_form(subject, "github"))) == (
        401,
        "federated_connection_refresh_token_not_found",
    )
    bad_type = _vault_form(subject, requested_token_type=TOKEN_TYPE_ACCESS_TOKEN)
    assert _error(_post(http, tenant, bad_type)) == (400, "invalid_request")
    no_connection = _vault_form(subject)
    del no_connection["connection"]
    assert _error(_post(http, tenant, no_connection)) == (400, "invalid_request")


def test_custom_token_exchange_profiles(tenant: LocalTenant, http: requests.Session) -> None:
    def handler(form: Mapping[str, str]) -> dict[str, Any]:
        if form["subject_token"] == "bad":
            raise ExchangeProfileError("invalid_grant", "not a partner token", 401)
        return {"sub": f"partner|{form['subject_token']}"}

    tenant.add_exchange_profile("urn:partner:token", handler)
    form = {
        "grant_type": GRANT_TOKEN_EXCHANGE,
        "subject_token_type": "urn:partner:token",
        "audience": MCP_API,
        "scope": "mcp:read",
    }

    body = _post(http, tenant, {**form, "subject_token": "p-42"}).json()

    claims = tenant.verify(body["access_token"], audience=MCP_API)
    assert claims["sub"] == "partner|p-42"
    assert claims["scope"] == "mcp:read"
    assert "scope" not in body
    assert _error(_post(http, tenant, {**form, "subject_token": "bad"})) == (401, "invalid_grant")
    unknown = {**form, "subject_token": "x", "subject_token_type": "urn:other"}
    assert _error(_post(http, tenant, unknown)) == (400, "invalid_request")


def test_a_broken_profile_hook_answers_500_and_is_kept_for_inspection(
    tenant: LocalTenant, http: requests.Session
) -> None:
    def handler(form: Mapping[str, str]) -> dict[str, Any]:
        raise RuntimeError("hook bug")

    tenant.add_exchange_profile("urn:partner:token", handler)
    form = {
        "grant_type": GRANT_TOKEN_EXCHANGE,
        "subject_token_type": "urn:partner:token",
        "subject_token": "x",
    }

    assert _error(_post(http, tenant, form)) == (500, "server_error")
    assert [str(e) for e in tenant.server_errors] == ["hook bug"]


# -- faults and concurrency ------------------------------------------------------------------


def test_faults_on_the_token_endpoint_are_recorded(
    tenant: LocalTenant, http: requests.Session
) -> None:
    tenant.inject_fault("token", status=503, body={"error": "temporarily_unavailable"})

    first = _obo(http, tenant)
    second = _obo(http, tenant)

    assert _error(first) == (503, "temporarily_unavailable")
    assert second.status_code == 200
    assert [r.status for r in tenant.token_requests] == [503, 200]
    assert tenant.token_requests[0].grant_type == GRANT_TOKEN_EXCHANGE
    assert tenant.count("token") == 2


def test_fifty_concurrent_exchanges(tenant: LocalTenant) -> None:
    subject = tenant.mint(audience=MCP_API)
    form = _exchange_form(subject, CALENDAR_API)
    form.update(client_id=DEFAULT_CLIENT_ID, client_secret=tenant.client_secret)

    def exchange(_: int) -> int:
        response = requests.post(
            tenant.token_endpoint, data=form, verify=tenant.ca_bundle, timeout=10
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(exchange, range(50)))

    assert statuses == [200] * 50
    assert tenant.count("token") == 50
    assert len(tenant.token_requests) == 50


# -- repeated parameters (RFC 6749 §3.2) ----------------------------------------------------


def test_a_repeated_standard_parameter_is_invalid_request(
    tenant: LocalTenant, http: requests.Session
) -> None:
    form: dict[str, Any] = _exchange_form(tenant.mint(audience=MCP_API), CALENDAR_API)
    form["audience"] = [CALENDAR_API, MCP_API]
    response = _post(http, tenant, form)
    assert _error(response) == (400, "invalid_request")
    assert "audience" in response.json()["error_description"]


def test_a_repeated_extension_parameter_keeps_every_value(
    tenant: LocalTenant, http: requests.Session
) -> None:
    form: dict[str, Any] = _exchange_form(tenant.mint(audience=MCP_API), CALENDAR_API)
    form["device"] = ["laptop", "phone"]
    response = _post(http, tenant, form)
    assert response.status_code == 200
    assert tenant.token_requests[-1].form["device"] == ["laptop", "phone"]

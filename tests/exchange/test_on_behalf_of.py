"""``OnBehalfOf`` (requests) and ``HttpxOnBehalfOf``: downstream calls as the user, over HTTPS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from rest_framework.test import APIClient

from django_auth0_obo.downstream_httpx import HttpxOnBehalfOf
from django_auth0_obo.exceptions import ConfigurationError, TokenExchangeError
from django_auth0_obo.exchange import OnBehalfOf
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.testing.resource_server import LocalResourceServer
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> LocalTenant:
    return configure(auth0_tenant, settings)


@pytest.fixture
def bound(tenant: LocalTenant, settings: Any) -> LocalTenant:
    """This API has its own DPoP key: exchanged tokens come back DPoP-bound."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_CLIENT_KEY": DPoPKey.generate().private_pem}
    return tenant


@pytest.fixture
def api(auth0_tenant: LocalTenant) -> Iterator[LocalResourceServer]:
    with LocalResourceServer(auth0_tenant, DOWNSTREAM) as server:
        yield server


def call(tenant: LocalTenant, api: LocalResourceServer, **kwargs: Any) -> requests.Response:
    auth = OnBehalfOf(kwargs.pop("token", None) or user_token(tenant), DOWNSTREAM, **kwargs)
    return requests.get(api.url("/events"), auth=auth, verify=api.ca_bundle, timeout=10)


def statuses(api: LocalResourceServer) -> list[tuple[int, str | None]]:
    return [(r.status, r.error) for r in api.requests]


def test_a_bearer_token_reaches_the_downstream_api_as_the_user(
    tenant: LocalTenant, api: LocalResourceServer
) -> None:
    response = call(tenant, api)

    assert response.status_code == 200
    assert response.json()["scheme"] == "Bearer"
    assert response.json()["sub"] == "auth0|user123"
    assert response.json()["act"] == {"sub": tenant.client_id}


def test_the_exchange_is_cached_across_calls(tenant: LocalTenant, api: LocalResourceServer) -> None:
    token = user_token(tenant)
    assert call(tenant, api, token=token).status_code == 200
    assert call(tenant, api, token=token).status_code == 200
    assert tenant.count("token") == 1


def test_a_bound_token_goes_with_the_dpop_scheme_and_a_proof(
    bound: LocalTenant, api: LocalResourceServer
) -> None:
    api.dpop_required = True
    response = call(bound, api)
    assert response.status_code == 200, response.json()
    assert response.json()["scheme"] == "DPoP"


def test_use_dpop_nonce_is_retried_once_and_the_nonce_remembered(
    bound: LocalTenant, api: LocalResourceServer
) -> None:
    api.require_nonce = True
    token = user_token(bound)

    response = call(bound, api, token=token)
    assert response.status_code == 200
    assert len(response.history) == 1
    assert statuses(api) == [(401, "use_dpop_nonce"), (200, None)]
    call(bound, api, token=token)
    assert statuses(api)[2:] == [(200, None)]  # the nonce was kept for this origin
    assert api.requests[-1].nonce == api.nonce


def test_a_post_body_survives_the_nonce_retry(bound: LocalTenant, api: LocalResourceServer) -> None:
    api.require_nonce = True
    auth = OnBehalfOf(user_token(bound), DOWNSTREAM)
    response = requests.post(
        api.url("/events"), data=b"payload", auth=auth, verify=api.ca_bundle, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["method"] == "POST"


def test_a_second_nonce_demand_reaches_the_caller(
    bound: LocalTenant, api: LocalResourceServer
) -> None:
    api.require_nonce = True
    api.rotate_nonce_on_demand = True
    response = call(bound, api)
    assert response.status_code == 401
    assert statuses(api) == [(401, "use_dpop_nonce"), (401, "use_dpop_nonce")]


@pytest.mark.parametrize("memo_ttl", [0, 5], ids=["no memo", "with the per-process memo"])
def test_invalid_token_triggers_one_fresh_exchange(
    tenant: LocalTenant, api: LocalResourceServer, settings: Any, memo_ttl: int
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "TOKEN_MEMO_TTL": memo_ttl}
    token = user_token(tenant)
    assert call(tenant, api, token=token).status_code == 200
    assert call(tenant, api, token=token).status_code == 200  # a cache hit (memo: remembered)
    api.revoke_next(1)

    response = call(tenant, api, token=token)
    assert response.status_code == 200
    assert statuses(api)[2:] == [(401, "invalid_token"), (200, None)]
    assert tenant.count("token") == 2  # cached token dropped, exchanged again
    assert call(tenant, api, token=token).status_code == 200
    assert tenant.count("token") == 2  # ... and the new one is cached


def test_only_one_fresh_exchange(tenant: LocalTenant, api: LocalResourceServer) -> None:
    api.revoke_next(5)
    response = call(tenant, api)
    assert response.status_code == 401
    assert statuses(api) == [(401, "invalid_token"), (401, "invalid_token")]
    assert tenant.count("token") == 2


def test_an_unbound_token_is_not_forwarded_when_a_bound_one_was_asked_for(
    bound: LocalTenant, api: LocalResourceServer
) -> None:
    bound.add_api(DOWNSTREAM, ("calendar:read", "calendar:write"), allow_dpop=False)

    with pytest.raises(TokenExchangeError) as caught:
        call(bound, api)
    assert caught.value.error == "unbound_token"
    assert api.requests == []  # nothing was sent downstream


def test_a_view_refusing_to_forward_an_unbound_token_answers_502_exchange_failed(
    bound: LocalTenant, api: LocalResourceServer, settings: Any, dpop_key: DPoPKey
) -> None:
    """Whose problem: this API's tenant configuration, so the caller sees a generic 502."""
    bound.add_api(DOWNSTREAM, ("calendar:read", "calendar:write"), allow_dpop=False)
    settings.ROOT_URLCONF = "tests.surface_urls"
    settings.SURFACE_DOWNSTREAM_URL = api.url("/events")
    settings.SURFACE_DOWNSTREAM_CA = api.ca_bundle
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "EXCEPTION_HANDLER": "django_auth0_obo.api_exceptions.exception_handler",
    }
    incoming = user_token(bound, cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", "http://testserver/calendar", incoming)

    response = APIClient().get("/calendar", HTTP_AUTHORIZATION=f"DPoP {incoming}", HTTP_DPOP=proof)
    assert response.status_code == 502
    assert response.json()["code"] == "exchange_failed"
    assert api.requests == []


def test_a_token_unusable_in_a_header_fails_the_exchange_before_anything_is_sent(
    tenant: LocalTenant, api: LocalResourceServer
) -> None:
    body = {"access_token": "abc\r\nX-Injected: 1", "token_type": "Bearer", "expires_in": 3600}
    tenant.inject_fault("token", status=200, body=body)

    with pytest.raises(TokenExchangeError) as caught:
        call(tenant, api)
    assert (caught.value.error, caught.value.status_code) == ("invalid_response", 502)
    assert api.requests == []


def test_an_unbound_token_may_be_sent_when_the_caller_says_so(
    bound: LocalTenant, api: LocalResourceServer
) -> None:
    bound.add_api(DOWNSTREAM, ("calendar:read", "calendar:write"), allow_dpop=False)
    response = call(bound, api, require_dpop=False)
    assert response.json()["scheme"] == "Bearer"


def test_require_dpop_without_a_client_key_is_a_configuration_error(
    tenant: LocalTenant, api: LocalResourceServer
) -> None:
    with pytest.raises(ConfigurationError):
        call(tenant, api, require_dpop=True)


def test_a_view_calls_the_downstream_api_with_the_users_dpop_token(
    bound: LocalTenant, api: LocalResourceServer, settings: Any, dpop_key: DPoPKey
) -> None:
    settings.ROOT_URLCONF = "tests.surface_urls"
    settings.SURFACE_DOWNSTREAM_URL = api.url("/events")
    settings.SURFACE_DOWNSTREAM_CA = api.ca_bundle
    api.require_nonce = True
    incoming = user_token(bound, cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", "http://testserver/calendar", incoming)

    response = APIClient().get("/calendar", HTTP_AUTHORIZATION=f"DPoP {incoming}", HTTP_DPOP=proof)
    assert response.status_code == 200, response.content
    assert response.json()["scheme"] == "DPoP"
    assert response.json()["act"] == {"sub": bound.client_id}


# -- httpx -------------------------------------------------------------------------------------


def test_the_httpx_twin_does_the_same_with_a_sync_client(
    bound: LocalTenant, api: LocalResourceServer
) -> None:
    api.require_nonce = True
    token = user_token(bound)
    with httpx.Client(verify=ssl.create_default_context(cafile=api.ca_bundle)) as client:
        response = client.get(api.url("/events"), auth=HttpxOnBehalfOf(token, DOWNSTREAM))
        assert response.status_code == 200
        assert response.json()["scheme"] == "DPoP"
        api.revoke_next(1)
        assert client.get(api.url("/e"), auth=HttpxOnBehalfOf(token, DOWNSTREAM)).status_code == 200
    assert statuses(api) == [
        (401, "use_dpop_nonce"),
        (200, None),
        (401, "invalid_token"),
        (200, None),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_httpx_twin_works_with_an_async_client(
    bound: LocalTenant, api: LocalResourceServer
) -> None:
    api.require_nonce = True
    token = user_token(bound)

    async def main() -> list[int]:
        context = ssl.create_default_context(cafile=api.ca_bundle)
        async with httpx.AsyncClient(verify=context) as client:
            first = await client.get(api.url("/a"), auth=HttpxOnBehalfOf(token, DOWNSTREAM))
            api.revoke_next(1)
            second = await client.get(api.url("/b"), auth=HttpxOnBehalfOf(token, DOWNSTREAM))
        return [first.status_code, second.status_code]

    assert asyncio.run(main()) == [200, 200]
    assert bound.count("token") == 2


# -- redirects to another origin ----------------------------------------------------------------


@pytest.fixture
def elsewhere(auth0_tenant: LocalTenant) -> Iterator[LocalResourceServer]:
    """Another origin, which answers a request without a token 401 ``invalid_token``."""
    with LocalResourceServer(auth0_tenant, DOWNSTREAM) as server:
        yield server


@pytest.fixture
def both_cas(auth0_tenant: LocalTenant, elsewhere: LocalResourceServer, tmp_path: Any) -> str:
    """One bundle trusting the stand-in (the redirecting API here) and the other origin."""
    bundle = tmp_path / "cas.pem"
    cas = (auth0_tenant.ca_bundle, elsewhere.ca_bundle)
    bundle.write_text("".join(Path(path).read_text() for path in cas))
    return str(bundle)


def open_redirect(tenant: LocalTenant, target: str) -> str:
    """A URL of the downstream API (played by the stand-in) that redirects to ``target``."""
    tenant.inject_fault("/moved", status=302, headers={"Location": target}, times=None)
    return f"{tenant.base_url}/moved"


def schemes_seen(server: LocalResourceServer) -> list[tuple[str | None, int]]:
    return [(r.scheme, r.status) for r in server.requests]


@pytest.mark.parametrize("kind", ["tenant", "bound"])
def test_a_401_from_another_origin_after_a_redirect_never_gets_a_fresh_token(
    request: pytest.FixtureRequest, elsewhere: LocalResourceServer, both_cas: str, kind: str
) -> None:
    tenant: LocalTenant = request.getfixturevalue(kind)
    url = open_redirect(tenant, elsewhere.url("/steal"))

    response = requests.get(
        url, auth=OnBehalfOf(user_token(tenant), DOWNSTREAM), verify=both_cas, timeout=10
    )

    assert response.status_code == 401  # the other origin's answer, handed to the caller
    assert schemes_seen(elsewhere) == [(None, 401)]  # requests dropped Authorization; no retry
    assert tenant.count("token") == 1  # and no fresh exchange on another server's word


def test_the_httpx_twin_ignores_a_401_from_another_origin_after_a_redirect(
    tenant: LocalTenant, elsewhere: LocalResourceServer, both_cas: str
) -> None:
    url = open_redirect(tenant, elsewhere.url("/steal"))
    context = ssl.create_default_context(cafile=both_cas)

    with httpx.Client(verify=context, follow_redirects=True) as client:
        response = client.get(url, auth=HttpxOnBehalfOf(user_token(tenant), DOWNSTREAM))

    assert response.status_code == 401
    assert schemes_seen(elsewhere) == [(None, 401)]
    assert tenant.count("/moved") == 1  # the call was not sent again
    assert tenant.count("token") == 1

"""Multiple custom domains: per-request DOMAINS resolvers, exchanges at the issuing domain,
keys and cache entries per domain. Two stand-in tenants play two domains."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from django_auth0_obo import domains, keys, tokens
from django_auth0_obo.checks import check_settings
from django_auth0_obo.exceptions import InvalidToken, TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.testing import LocalTenant
from tests.exchange_support import DOWNSTREAM, THIS_API, user_token

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.surface_urls")]

RESOLVER = "tests.surface_urls.domains_for_request"


@pytest.fixture(scope="module")
def second(auth0_tenant_server: LocalTenant) -> Iterator[LocalTenant]:
    """Another domain: its own keys and TLS, the same client registered with the same secret."""
    with LocalTenant(client_secret=auth0_tenant_server.client_secret, fresh_keys=True) as other:
        yield other


@pytest.fixture
def tenants(
    auth0_tenant: LocalTenant, second: LocalTenant, settings: Any, tmp_path: Path
) -> tuple[LocalTenant, LocalTenant]:
    second.reset()
    keys.forget_issuer(second.issuer)
    tokens.clear_memo()
    bundle = tmp_path / "both-cas.pem"
    bundle.write_bytes(
        Path(auth0_tenant.ca_bundle).read_bytes() + Path(second.ca_bundle).read_bytes()
    )
    settings.AUTH0_OBO = auth0_tenant.django_settings(
        audience=THIS_API,
        DOMAIN=None,
        DOMAINS=[auth0_tenant.domain, second.domain],
        TLS_CA_BUNDLE=str(bundle),
    )
    settings.SURFACE_TENANT_DOMAINS = {"a": auth0_tenant.domain, "b": second.domain}
    yield auth0_tenant, second
    keys.forget_issuer(second.issuer)


def iss_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["iss"]


def test_an_exchange_goes_to_the_domain_that_issued_the_token(
    tenants: tuple[LocalTenant, LocalTenant],
) -> None:
    first, second = tenants
    result = get_token_on_behalf_of(user_token(second), DOWNSTREAM, "calendar:read")

    assert iss_of(result["access_token"]) == second.issuer
    assert (first.count("token"), second.count("token")) == (0, 1)


def test_each_domain_verifies_with_its_own_keys(tenants: tuple[LocalTenant, LocalTenant]) -> None:
    first, second = tenants
    assert first.signing_kid != second.signing_kid or first.jwks() != second.jwks()
    for tenant in tenants:
        claims = tokens.verify_access_token(user_token(tenant), audiences=[THIS_API])
        assert claims["iss"] == tenant.issuer
    assert (first.count("jwks"), second.count("jwks")) == (1, 1)


def test_cache_entries_stay_per_domain(tenants: tuple[LocalTenant, LocalTenant]) -> None:
    first, second = tenants
    from_second = user_token(second)  # minted once: a second mint may carry a later ``iat``
    get_token_on_behalf_of(user_token(first), DOWNSTREAM, "calendar:read")
    get_token_on_behalf_of(from_second, DOWNSTREAM, "calendar:read")
    get_token_on_behalf_of(from_second, DOWNSTREAM, "calendar:read")

    assert ExchangedToken.objects.count() == 2
    assert (first.count("token"), second.count("token")) == (1, 1)


def test_a_token_naming_a_foreign_issuer_sends_nothing_there(
    tenants: tuple[LocalTenant, LocalTenant],
) -> None:
    """Client credentials only ever go to an accepted domain, whatever a token claims."""
    first, second = tenants
    forged = first.mint(audience=THIS_API, issuer="https://attacker.example/")
    with pytest.raises(TokenExchangeError):
        get_token_on_behalf_of(forged, DOWNSTREAM)
    assert (first.count("token"), second.count("token")) == (1, 0)  # the first domain refused


# -- a per-request resolver -------------------------------------------------------------------


@pytest.fixture
def resolved(tenants: tuple[LocalTenant, LocalTenant], settings: Any) -> Any:
    first, _ = tenants
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DOMAIN": first.domain, "DOMAINS": RESOLVER}
    return tenants


def post_exchange(token: str, tenant_name: str) -> Any:
    return APIClient().post(
        "/exchange", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT=tenant_name
    )


def test_a_resolver_picks_the_domains_each_request_accepts(resolved: Any) -> None:
    first, second = resolved
    assert post_exchange(user_token(second), "b").status_code == 200
    refused = post_exchange(user_token(second), "a")
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert post_exchange(user_token(first), "b").status_code == 401


def test_the_exchange_follows_the_resolved_domain(resolved: Any) -> None:
    first, second = resolved
    assert post_exchange(user_token(second), "b").status_code == 200
    assert (first.count("token"), second.count("token")) == (0, 1)


def test_a_token_verified_for_one_request_is_not_accepted_by_another_domain(
    resolved: Any,
) -> None:
    """The verified-token memo must not carry a token across domains."""
    _, second = resolved
    token = user_token(second)
    assert post_exchange(token, "b").status_code == 200
    assert post_exchange(token, "a").status_code == 401


def test_outside_a_request_only_the_fixed_domain_is_accepted(resolved: Any) -> None:
    first, second = resolved
    tokens.verify_access_token(user_token(first), audiences=[THIS_API])
    with pytest.raises(InvalidToken):
        tokens.verify_access_token(user_token(second), audiences=[THIS_API])
    request = RequestFactory().get("/", HTTP_X_TENANT="b")
    with domains.for_request(request):
        tokens.verify_access_token(user_token(second), audiences=[THIS_API])


def test_a_resolver_answer_that_is_not_a_domain_is_ignored(resolved: Any, settings: Any) -> None:
    _, second = resolved
    settings.SURFACE_TENANT_DOMAINS = {"b": f"https://{second.domain}/"}
    assert post_exchange(user_token(second), "b").status_code == 401


def test_the_metadata_lists_the_requests_domains(resolved: Any, settings: Any) -> None:
    settings.ROOT_URLCONF = "testproject.urls"
    _, second = resolved
    response = APIClient().get("/.well-known/oauth-protected-resource", HTTP_X_TENANT="b")
    assert response.json()["authorization_servers"] == [second.issuer]
    assert response.headers["Vary"] == "Host"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tests.surface_urls.no_such_function", "auth0_obo.E040"),
        ("tests.surface_urls.NOT_CALLABLE", "auth0_obo.E041"),
    ],
)
def test_a_bad_resolver_fails_the_checks(
    resolved: Any, settings: Any, value: str, expected: str
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DOMAINS": value}
    assert expected in {m.id for m in check_settings()}


def test_a_resolver_needs_no_fixed_domain(resolved: Any, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DOMAIN": None}
    ids = {m.id for m in check_settings()}
    assert "auth0_obo.E001" not in ids
    assert "auth0_obo.E003" not in ids

"""django-ninja routes protected by ``Auth0Auth``: the DRF class's checks, challenges and audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.testing import DPoPKey, LocalTenant
from tests.ninja_urls import CALENDAR_API

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ninja_urls")]

MCP = "mcp-server-client"


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def delegated(tenant: LocalTenant, actor: str = MCP, **claims: Any) -> str:
    claims.setdefault("scope", "calendar:read")
    return tenant.mint(audience=CALENDAR_API, act={"sub": actor}, azp=actor, **claims)


def test_a_valid_bearer_token_reaches_the_route_as_request_auth(
    auth0_tenant: LocalTenant, client: Any
) -> None:
    response = client.get("/ninja/whoami", **bearer(auth0_tenant.mint(sub="auth0|alice")))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "sub": "auth0|alice",
        "scheme": "Bearer",
        "actor": None,
        "user": "auth0|alice",
    }


def test_a_dpop_bound_token_with_its_proof_is_accepted(
    auth0_tenant: LocalTenant, client: Any, dpop_key: DPoPKey
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", "http://testserver/ninja/whoami", access_token=token)

    response = client.get("/ninja/whoami", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)

    assert response.status_code == 200, response.content
    assert response.json()["scheme"] == "DPoP"


@dataclass(frozen=True)
class Case:
    path: str
    headers: Any  # (tenant) -> request headers
    status: int
    error: str | None  # the error= of the challenge, None for a bare challenge
    code: str | None = None  # the body's code for 403s


CASES: dict[str, Case] = {
    "no credentials: bare challenge": Case("/ninja/whoami", lambda t: {}, 401, None),
    "another scheme: bare challenge": Case(
        "/ninja/whoami", lambda t: {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, 401, None
    ),
    "empty bearer: invalid_request": Case(
        "/ninja/whoami", lambda t: {"HTTP_AUTHORIZATION": "Bearer "}, 400, "invalid_request"
    ),
    "expired token": Case(
        "/ninja/whoami", lambda t: bearer(t.mint(expires_in=-3600)), 401, "invalid_token"
    ),
    "token for another API than the route's audience": Case(
        "/ninja/calendar", lambda t: bearer(t.mint(act={"sub": MCP}, azp=MCP)), 401, "invalid_token"
    ),
    "DPoP scheme without a proof": Case(
        "/ninja/whoami",
        lambda t: {"HTTP_AUTHORIZATION": f"DPoP {t.mint()}"},
        400,
        "invalid_request",
    ),
    "missing scope: insufficient_scope": Case(
        "/ninja/calendar",
        lambda t: bearer(delegated(t, scope="calendar:write")),
        403,
        "insufficient_scope",
        "insufficient_scope",
    ),
    "actor not allowed": Case(
        "/ninja/calendar", lambda t: bearer(delegated(t, "rogue")), 403, None, "actor_not_allowed"
    ),
    "direct token where actors are checked": Case(
        "/ninja/calendar",
        lambda t: bearer(t.mint(audience=CALENDAR_API, scope="calendar:read")),
        403,
        None,
        "direct_token_not_allowed",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_each_refusal_gets_the_drf_classs_status_and_challenge(
    auth0_tenant: LocalTenant, client: Any, case: Case
) -> None:
    response = client.get(case.path, **case.headers(auth0_tenant))

    assert response.status_code == case.status, response.content
    challenge = response.headers.get("WWW-Authenticate", "")
    if case.status in (400, 401):
        assert challenge.startswith("Bearer realm=")
        assert 'DPoP algs="ES256"' in challenge
        assert 'resource_metadata="http://testserver/.well-known/oauth-protected-resource' in (
            challenge
        )
    if case.error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{case.error}"' in challenge
    if case.code is not None:
        assert response.json()["code"] == case.code
    if case.error == "insufficient_scope":
        assert 'scope="calendar:read"' in challenge
    assert "eyJ" not in response.content.decode()  # never a token in the body


def test_an_allowed_delegated_call_is_audited_like_a_drf_view(
    auth0_tenant: LocalTenant, client: Any
) -> None:
    response = client.get("/ninja/calendar", **bearer(delegated(auth0_tenant, sub="auth0|alice")))

    assert response.status_code == 200, response.content
    assert response.json()["actor"] == MCP
    event = DelegationEvent.objects.get()
    assert (event.subject, event.current_actor, event.outcome) == ("auth0|alice", MCP, "allowed")
    assert (event.audience, event.path, event.method) == (CALENDAR_API, "/ninja/calendar", "GET")


def test_a_refused_actor_is_audited_with_its_reason(auth0_tenant: LocalTenant, client: Any) -> None:
    response = client.get("/ninja/calendar", **bearer(delegated(auth0_tenant, "rogue")))

    assert response.status_code == 403
    event = DelegationEvent.objects.get()
    assert (event.current_actor, event.outcome, event.reason) == (
        "rogue",
        "denied",
        "actor_not_allowed",
    )


def test_without_add_challenges_ninja_still_answers_with_the_right_status(
    auth0_tenant: LocalTenant, client: Any
) -> None:
    refused = client.get("/bare/whoami", **bearer(auth0_tenant.mint(expires_in=-3600)))
    allowed = client.get("/bare/whoami", **bearer(auth0_tenant.mint()))

    assert refused.status_code == 401
    assert "detail" in refused.json()
    assert "WWW-Authenticate" not in refused.headers  # what add_challenges adds
    assert allowed.status_code == 200

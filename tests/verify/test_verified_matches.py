"""``VerifiedToken`` records what verification matched: the audience and the bound ``cnf.jkt``.

The audit uses the recorded audience instead of deriving it again, so a view narrowing its
audience through ``get_audience()`` is audited with the audience it actually accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo import tokens
from django_auth0_obo.exceptions import InvalidToken, UnverifiedBoundToken
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import DelegationEvent
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.verified import VerifiedToken
from tests.bearer_urls import API, CALENDAR_API, MCP_API

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

ACTOR = "mcp-server-client"


class EchoView(APIView):
    """Accepts what the settings accept; echoes what verification matched."""

    def get(self, request: Request) -> Response:
        token = request.auth
        return Response({"audience": token.audience, "bound_jkt": token.bound_jkt})


class AttributeView(EchoView):
    audience = MCP_API


class HookView(EchoView):
    def get_audience(self) -> str:
        return MCP_API


class HookListView(EchoView):
    def get_audience(self) -> list[str]:
        return [CALENDAR_API, MCP_API]


urlpatterns = [
    path("echo", EchoView.as_view()),
    path("attribute", AttributeView.as_view()),
    path("hook", HookView.as_view()),
    path("hook-list", HookListView.as_view()),
]


@dataclass(frozen=True)
class Row:
    path: str
    token_aud: list[str]
    expected: str


ROWS = {
    # The settings accept API then MCP_API; the token lists API first.
    "no narrowing: the first accepted audience the token names": Row("/echo", [API, MCP_API], API),
    "attribute narrowing": Row("/attribute", [API, MCP_API], MCP_API),
    "get_audience() narrowing (audited as API before the fix)": Row(
        "/hook", [API, MCP_API], MCP_API
    ),
    "get_audience() list: the narrowing's first that matches": Row(
        "/hook-list", [API, MCP_API, CALENDAR_API], CALENDAR_API
    ),
}


@pytest.fixture
def tenant(auth0_tenant: LocalTenant, settings: Any) -> LocalTenant:
    settings.AUTH0_OBO = {
        **settings.AUTH0_OBO,
        "AUDIENCE": [API, MCP_API, CALENDAR_API],
        "AUDIT": "all",
    }
    return auth0_tenant


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_the_matched_audience_is_recorded_and_audited(
    row: Row, tenant: LocalTenant, api_client: Any
) -> None:
    token = tenant.mint(audience=row.token_aud, act={"sub": ACTOR}, azp=ACTOR)
    response = api_client.get(row.path, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response.json() == {"audience": row.expected, "bound_jkt": None}
    assert DelegationEvent.objects.get().audience == row.expected


def test_a_dpop_token_records_its_bound_jkt(
    tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any
) -> None:
    token = tenant.mint(audience=API, cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", "http://testserver/echo", token)
    response = api_client.get("/echo", HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert response.status_code == 200, response.content
    assert response.json() == {"audience": API, "bound_jkt": dpop_key.jkt}
    assert DelegationEvent.objects.get().jkt == dpop_key.jkt


def test_verify_returns_what_it_matched(tenant: LocalTenant) -> None:
    token = tenant.mint(audience=[API, MCP_API], cnf_jkt="thumbprint")
    verification = tokens.verify(token, audiences=[MCP_API])
    assert (verification.audience, verification.bound_jkt) == (MCP_API, "thumbprint")
    remembered = tokens.verify(token, audiences=MCP_API)  # the memo path records the same
    assert (remembered.audience, remembered.bound_jkt) == (MCP_API, "thumbprint")


def test_an_exchange_is_audited_with_the_audience_the_subject_token_matched(
    tenant: LocalTenant,
) -> None:
    token = tenant.mint(audience=[API, MCP_API])
    verified = VerifiedToken.from_verification(token, tokens.verify(token, audiences=[MCP_API]))
    get_token_on_behalf_of(verified, CALENDAR_API)
    event = DelegationEvent.objects.get(kind="exchange")
    assert (event.audience, event.target_audience) == (MCP_API, CALENDAR_API)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: t.mint(cnf_jkt="k"), id="raw string bound token"),
        pytest.param(
            lambda t: VerifiedToken(t.mint(cnf_jkt="k"), {"sub": "u", "cnf": {"jkt": "k"}}),
            id="Bearer VerifiedToken with a bound jkt",
        ),
        pytest.param(
            lambda t: VerifiedToken(t.mint(), {"sub": "u"}, "DPoP", "k", bound_jkt="other"),
            id="proof key differs from the recorded binding",
        ),
    ],
)
def test_exchanging_an_unverified_bound_token_raises_a_named_error(
    make: Any, tenant: LocalTenant
) -> None:
    with pytest.raises(UnverifiedBoundToken):
        get_token_on_behalf_of(make(tenant), CALENDAR_API)
    assert not DelegationEvent.objects.filter(kind="exchange").exists()


@pytest.mark.parametrize(
    "cnf",
    [{}, {"kid": "k"}, {"jwk": {"kty": "EC"}}],
    ids=["empty cnf", "cnf.kid only", "cnf.jwk only"],
)
def test_a_binding_without_jkt_is_refused_not_treated_as_unbound(
    cnf: dict[str, Any], tenant: LocalTenant, api_client: Any
) -> None:
    token = tenant.mint(claims={"cnf": cnf})
    with pytest.raises(InvalidToken, match="Malformed cnf claim"):
        tokens.verify(token)
    response = api_client.get("/echo", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401

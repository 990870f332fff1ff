"""DPoP on the exchange: this API's own proof, the nonce dance, and bound downstream tokens."""

from __future__ import annotations

import jwt
import pytest
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_auth0_obo import dpop, token_endpoint
from django_auth0_obo.authentication import Auth0Authentication
from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.testing.proofs import DPoPKey
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_key() -> DPoPKey:
    """This API's own key pair (DPOP_CLIENT_KEY)."""
    return DPoPKey.generate("ES256")


@pytest.fixture
def tenant(auth0_tenant, settings, client_key):
    return configure(auth0_tenant, settings, DPOP_CLIENT_KEY=client_key.private_pem)


def proof_claims(proof: str) -> dict:
    return jwt.decode(proof, options={"verify_signature": False})


def test_exchange_requests_carry_a_proof_and_get_a_bound_dpop_token(tenant, client_key):
    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")

    assert result["token_type"] == "DPoP"
    issued = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert issued["cnf"] == {"jkt": client_key.jkt}
    (request,) = tenant.token_requests
    claims = proof_claims(request.dpop_proof)
    assert (claims["htm"], claims["htu"]) == ("POST", tenant.token_endpoint)
    assert "ath" not in claims


def test_a_use_dpop_nonce_answer_is_retried_once_and_the_nonce_remembered(tenant):
    nonce = tenant.require_dpop_nonce()
    subject = user_token(tenant)

    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    first, retried = tenant.token_requests
    assert (first.status, first.error) == (400, "use_dpop_nonce")
    assert "nonce" not in proof_claims(first.dpop_proof)
    assert proof_claims(retried.dpop_proof)["nonce"] == nonce
    assert retried.status == 200

    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:write")
    third = tenant.token_requests[2]
    assert proof_claims(third.dpop_proof)["nonce"] == nonce
    assert tenant.count("token") == 3
    assert token_endpoint.remembered_nonce(tenant.domain) == nonce


def test_a_second_nonce_demand_in_a_row_is_raised(tenant):
    body = {"error": "use_dpop_nonce", "error_description": "Nonce required."}
    tenant.inject_fault("token", status=400, body=body, headers={"DPoP-Nonce": "n1"}, times=2)

    with pytest.raises(TokenExchangeError) as failure:
        get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)

    assert failure.value.error == "use_dpop_nonce"
    assert tenant.count("token") == 2


def test_the_dpop_key_is_part_of_the_cache_key(tenant, settings):
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    assert tenant.count("token") == 1

    other = DPoPKey.generate("ES256")
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "DPOP_CLIENT_KEY": other.private_pem}
    result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    issued = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert issued["cnf"] == {"jkt": other.jkt}
    assert tenant.count("token") == 2


def test_without_a_client_key_no_proof_is_sent_and_the_token_is_bearer(auth0_tenant, settings):
    configure(auth0_tenant, settings)

    result = get_token_on_behalf_of(user_token(auth0_tenant), DOWNSTREAM)

    assert result["token_type"] == "Bearer"
    assert auth0_tenant.token_requests[0].dpop_proof is None


def test_an_api_without_sender_constraining_gets_a_bearer_token_and_a_warning(tenant, caplog):
    tenant.add_api(DOWNSTREAM, ["calendar:read"], allow_dpop=False)

    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")

    assert result["token_type"] == "Bearer"
    assert "sender-constrained" in caplog.text


class Downstream(APIView):
    """The calendar API: accepts only tokens for its own audience."""

    authentication_classes = [Auth0Authentication]
    permission_classes = [IsAuthenticated]
    audience = DOWNSTREAM

    def get(self, request):
        return Response({"scheme": request.auth.scheme, "sub": request.user.sub})


def call_downstream(authorization: str, proof: str | None = None):
    headers = {"HTTP_AUTHORIZATION": authorization}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    request = APIRequestFactory().get("/calendar/events", **headers)
    return Downstream.as_view()(request)


def test_the_bound_token_is_accepted_downstream_with_a_proof_and_refused_as_bearer(tenant):
    token = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")["access_token"]
    url = "http://testserver/calendar/events"

    accepted = call_downstream(f"DPoP {token}", dpop.make_proof("GET", url, access_token=token))
    as_bearer = call_downstream(f"Bearer {token}")
    wrong_url = call_downstream(
        f"DPoP {token}", dpop.make_proof("GET", "http://testserver/other", access_token=token)
    )

    assert accepted.status_code == 200, accepted.data
    assert accepted.data == {"scheme": "DPoP", "sub": "auth0|user123"}
    assert as_bearer.status_code == 401
    assert wrong_url.status_code == 401

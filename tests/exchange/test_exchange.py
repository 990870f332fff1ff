"""On-behalf-of exchange against the stand-in tenant over real HTTPS: requests, results, cache."""

from __future__ import annotations

import base64
import logging
import time
from datetime import timedelta
from urllib.parse import unquote_plus

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_auth0_obo import signals
from django_auth0_obo.authentication import Auth0Authentication
from django_auth0_obo.exceptions import ConfigurationError, TokenExchangeError
from django_auth0_obo.exchange import (
    TOKEN_TYPE_ACCESS_TOKEN,
    forget_token_on_behalf_of,
    get_token_on_behalf_of,
)
from django_auth0_obo.models import ExchangedToken
from django_auth0_obo.testing.config import DEFAULT_AUDIENCE
from django_auth0_obo.verified import VerifiedToken
from tests.exchange_support import DOWNSTREAM, THIS_API, configure, user_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(auth0_tenant, settings):
    return configure(auth0_tenant, settings)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_the_result_has_the_contract_fields_and_no_id_or_refresh_token(tenant):
    before = int(time.time())
    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")
    after = int(time.time())

    assert set(result) == {
        "access_token",
        "expires_in",
        "expires_at",
        "scope",
        "token_type",
        "issued_token_type",
    }
    assert result["token_type"] == "Bearer"
    assert result["issued_token_type"] == TOKEN_TYPE_ACCESS_TOKEN
    assert result["scope"] == "calendar:read"
    # The tenant's ``expires_in`` (3600) counts from when the request was sent; ``expires_in``
    # in the result is what is left when it returns, whole seconds, so a second boundary
    # crossed during the call takes one off. Pin exactly that rule, not a fixed number.
    assert before + 3600 <= result["expires_at"] <= after + 3600
    assert result["expires_at"] - after <= result["expires_in"] <= result["expires_at"] - before
    assert 3600 - (after - before) <= result["expires_in"] <= 3600
    issued = claims_of(result["access_token"])
    assert issued["exp"] - issued["iat"] == 3600
    assert result["expires_at"] <= issued["exp"]  # never believed valid past the token's exp
    assert issued["sub"] == "auth0|user123"
    assert issued["aud"] == DOWNSTREAM
    assert issued["act"] == {"sub": tenant.client_id}


def test_expires_in_is_what_is_left_when_the_result_returns(tenant):
    # A slow tenant (over a second) makes the boundary case of the test above certain.
    tenant.inject_fault("token", status=None, delay=1.1)
    before = int(time.time())
    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, "calendar:read")
    after = int(time.time())

    assert after - before >= 1
    assert before + 3600 <= result["expires_at"] <= after + 3600
    assert result["expires_at"] - after <= result["expires_in"] <= 3599


def test_the_request_is_an_rfc_8693_form_with_client_secret_post(tenant):
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read calendar:read")

    (request,) = tenant.token_requests
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.auth_method == "client_secret_post"
    assert request.form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject,
        "subject_token_type": TOKEN_TYPE_ACCESS_TOKEN,
        "requested_token_type": TOKEN_TYPE_ACCESS_TOKEN,
        "audience": DOWNSTREAM,
        "scope": "calendar:read",
        "client_id": tenant.client_id,
        "client_secret": "[redacted]",
    }


def test_no_scope_is_sent_when_none_is_asked_for(tenant):
    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)

    assert "scope" not in tenant.token_requests[0].form
    assert result["scope"] == "calendar:read calendar:write"


def test_client_secret_basic_form_urlencodes_the_id_and_secret(auth0_tenant, settings):
    odd_id, odd_secret = "odd client:id/ü", "s3cr+t:%&= é"
    auth0_tenant.add_client(
        odd_id,
        odd_secret,
        api=THIS_API,
        grants={DOWNSTREAM: ["calendar:read"]},
        auth_method="client_secret_basic",
    )
    configure(
        auth0_tenant,
        settings,
        CLIENT_ID=odd_id,
        CLIENT_SECRET=odd_secret,
        CLIENT_AUTH_METHOD="client_secret_basic",
    )

    result = get_token_on_behalf_of(user_token(auth0_tenant), DOWNSTREAM, "calendar:read")

    (request,) = auth0_tenant.token_requests
    assert request.auth_method == "client_secret_basic"
    assert "client_secret" not in request.form
    assert claims_of(result["access_token"])["act"] == {"sub": odd_id}


def test_basic_credentials_are_form_urlencoded_before_base64():
    from django_auth0_obo.token_endpoint import basic_authorization

    header = basic_authorization("a b:c", "p@ss:wörd+")
    raw_id, _, raw_secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")

    assert raw_id == "a+b%3Ac"
    assert (unquote_plus(raw_id), unquote_plus(raw_secret)) == ("a b:c", "p@ss:wörd+")


def test_a_second_identical_call_is_served_from_the_cache(tenant):
    subject = user_token(tenant)
    first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    second = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert second["access_token"] == first["access_token"]
    assert second["expires_at"] == first["expires_at"]
    assert second["scope"] == first["scope"]
    assert second["token_type"] == first["token_type"]
    assert tenant.count("token") == 1


def test_scope_order_and_duplicates_do_not_change_the_cache_entry(tenant):
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read calendar:write")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:write  calendar:read calendar:write")

    assert tenant.count("token") == 1


@pytest.mark.parametrize(
    ("audience", "scope"),
    [
        (DOWNSTREAM, "calendar:write"),
        (DOWNSTREAM, None),
        (DEFAULT_AUDIENCE, "read:data"),
    ],
)
def test_another_audience_or_scope_set_is_another_cache_entry(tenant, audience, scope):
    subject = user_token(tenant)
    first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    other = get_token_on_behalf_of(subject, audience, scope)

    assert other["access_token"] != first["access_token"]
    assert tenant.count("token") == 2
    assert ExchangedToken.objects.count() == 2


def test_another_user_token_is_another_cache_entry(tenant):
    get_token_on_behalf_of(user_token(tenant, sub="auth0|alice"), DOWNSTREAM, "calendar:read")
    result = get_token_on_behalf_of(
        user_token(tenant, sub="auth0|bob"), DOWNSTREAM, "calendar:read"
    )

    assert claims_of(result["access_token"])["sub"] == "auth0|bob"
    assert tenant.count("token") == 2


@pytest.mark.parametrize("memo_ttl", [0, 5], ids=["no memo", "with the per-process memo"])
def test_forgetting_a_cached_result_makes_the_next_call_ask_the_tenant_again(
    tenant, settings, memo_ttl
):
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "TOKEN_MEMO_TTL": memo_ttl}
    subject = user_token(tenant)
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read calendar:write")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read calendar:write")  # a hit: memo

    # Same key rules as the exchange: scope order and duplicates do not matter.
    assert forget_token_on_behalf_of(subject, DOWNSTREAM, "calendar:write calendar:read")
    assert ExchangedToken.objects.count() == 0
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read calendar:write")

    assert tenant.count("token") == 2
    assert ExchangedToken.objects.count() == 1


@pytest.mark.parametrize(
    ("audience", "scope", "sub"),
    [
        (DOWNSTREAM, "calendar:write", "auth0|user123"),
        (DOWNSTREAM, None, "auth0|user123"),
        (DEFAULT_AUDIENCE, "calendar:read", "auth0|user123"),
        (DOWNSTREAM, "calendar:read", "auth0|someone-else"),
    ],
)
def test_forgetting_touches_only_the_result_for_those_arguments(tenant, audience, scope, sub):
    subject = user_token(tenant)
    first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    other_subject = subject if sub == "auth0|user123" else user_token(tenant, sub=sub)

    assert forget_token_on_behalf_of(other_subject, audience, scope) is False
    before = int(time.time())
    again = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    after = int(time.time())

    # The same cached result; only ``expires_in``, what is left when it returns, may have lost
    # a second to a boundary crossed since the first call.
    assert {**again, "expires_in": None} == {**first, "expires_in": None}
    assert again["expires_at"] - after <= again["expires_in"] <= again["expires_at"] - before
    assert tenant.count("token") == 1


@pytest.mark.parametrize("audience", ["", "  ", None])
def test_forgetting_refuses_what_the_exchange_refuses(tenant, audience):
    with pytest.raises(ValueError, match="audience is required"):
        forget_token_on_behalf_of(user_token(tenant), audience)


@pytest.mark.parametrize("missing", ["CLIENT_ID", "CLIENT_SECRET"])
def test_missing_client_credentials_fail_before_any_call(auth0_tenant, settings, missing):
    configure(auth0_tenant, settings, **{missing: None})

    with pytest.raises(ConfigurationError, match="CLIENT_ID and CLIENT_SECRET"):
        get_token_on_behalf_of(user_token(auth0_tenant), DOWNSTREAM)
    assert auth0_tenant.count("token") == 0


def test_a_missing_domain_fails_before_any_call(auth0_tenant, settings):
    configure(auth0_tenant, settings, DOMAIN=None)

    with pytest.raises(ImproperlyConfigured):
        get_token_on_behalf_of(user_token(auth0_tenant), DOWNSTREAM)
    assert auth0_tenant.count("token") == 0


@pytest.mark.parametrize("audience", [None, "", "  ", 42])
def test_a_missing_audience_fails_before_any_call(tenant, audience):
    with pytest.raises(ValueError, match="audience"):
        get_token_on_behalf_of(user_token(tenant), audience)
    assert tenant.count("token") == 0


@pytest.mark.parametrize("bad", ["", "  ", " padded", "Bearer abc.def.ghi", "dpop abc", None, 7])
def test_a_malformed_subject_token_fails_before_any_call(tenant, bad):
    with pytest.raises(ValueError, match="access_token"):
        get_token_on_behalf_of(bad, DOWNSTREAM)
    assert tenant.count("token") == 0


def test_a_scope_that_is_not_a_string_fails_before_any_call(tenant):
    with pytest.raises(ValueError, match="scope"):
        get_token_on_behalf_of(user_token(tenant), DOWNSTREAM, ["calendar:read"])
    assert tenant.count("token") == 0


def test_a_raw_dpop_bound_token_is_refused_because_the_tenant_would_not_check_it(tenant, dpop_key):
    bound = user_token(tenant, cnf_jkt=dpop_key.jkt)

    with pytest.raises(ValueError, match="DPoP-bound"):
        get_token_on_behalf_of(bound, DOWNSTREAM)
    assert tenant.count("token") == 0


def test_a_dpop_bound_verified_token_is_exchanged_only_with_its_proof_key(tenant, dpop_key):
    bound = user_token(tenant, cnf_jkt=dpop_key.jkt)
    claims = claims_of(bound)

    with pytest.raises(ValueError, match="DPoP-bound"):
        get_token_on_behalf_of(VerifiedToken(bound, claims, "Bearer"), DOWNSTREAM)
    with pytest.raises(ValueError, match="DPoP-bound"):
        get_token_on_behalf_of(VerifiedToken(bound, claims, "DPoP", jkt="other"), DOWNSTREAM)
    assert tenant.count("token") == 0

    verified = VerifiedToken(bound, claims, "DPoP", jkt=dpop_key.jkt)
    result = get_token_on_behalf_of(verified, DOWNSTREAM, "calendar:read")
    assert claims_of(result["access_token"])["sub"] == "auth0|user123"


def test_the_cache_never_outlives_the_subject_token(tenant):
    subject = user_token(tenant, expires_in=600)
    result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    row = ExchangedToken.objects.get()
    assert int(row.cached_until.timestamp()) == claims_of(subject)["exp"]
    assert int(row.expires_at.timestamp()) == result["expires_at"]
    assert result["expires_at"] > claims_of(subject)["exp"]


def test_a_subject_token_inside_the_refresh_margin_is_not_cached(tenant):
    subject = user_token(tenant, expires_in=20)  # the default margin is 30 s
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert tenant.count("token") == 2
    assert not ExchangedToken.objects.exists()


def test_a_cached_token_inside_the_refresh_margin_is_replaced(tenant):
    subject = user_token(tenant)
    first = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    assert (
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")["access_token"]
        == (first["access_token"])
    )

    # 29 s left: inside the default 30 s margin, as if the hour had nearly passed.
    ExchangedToken.objects.update(cached_until=timezone.now() + timedelta(seconds=29))
    tenant.exchange_token_lifetime = 3599  # so the new token differs from the first
    fresh = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")

    assert fresh["access_token"] != first["access_token"]
    assert tenant.count("token") == 2
    row = ExchangedToken.objects.get()
    assert int(row.expires_at.timestamp()) == fresh["expires_at"]
    again = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    assert again["access_token"] == fresh["access_token"]
    assert tenant.count("token") == 2


def test_token_exchanged_is_sent_for_misses_and_hits_without_the_token(tenant):
    received = []

    def receiver(sender, **kwargs):
        received.append((sender, kwargs))

    signals.token_exchanged.connect(receiver)
    try:
        subject = user_token(tenant, org_id="org_1")
        verified = VerifiedToken(subject, claims_of(subject))
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
        result = get_token_on_behalf_of(verified, DOWNSTREAM, "calendar:read")
    finally:
        signals.token_exchanged.disconnect(receiver)

    (sender, miss), (_, hit) = received
    assert sender is get_token_on_behalf_of
    assert miss == {
        "signal": signals.token_exchanged,
        "grant": "on_behalf_of",
        "subject": "auth0|user123",
        "audience": DOWNSTREAM,
        "connection": None,
        "requested_scope": "calendar:read",
        "granted_scope": "calendar:read",
        "cache_hit": False,
        "token_type": "Bearer",
        "expires_at": result["expires_at"],
        "claims": None,
        "subject_audience": None,
    }
    assert hit["cache_hit"] is True
    assert hit["claims"] == verified.claims
    assert hit["subject_audience"] == verified.audience
    assert subject not in repr(received)
    assert result["access_token"] not in repr(received)


def test_exchange_failed_is_sent_with_the_tenants_error(tenant):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    signals.exchange_failed.connect(receiver)
    try:
        with pytest.raises(TokenExchangeError):
            get_token_on_behalf_of(user_token(tenant), "https://unknown.example.com")
    finally:
        signals.exchange_failed.disconnect(receiver)

    (failure,) = received
    assert failure["error"] == "invalid_target"
    assert failure["error_description"] == "Service not found: https://unknown.example.com."
    assert failure["status_code"] == 400
    assert failure["subject"] == "auth0|user123"
    assert failure["audience"] == "https://unknown.example.com"


def test_no_token_or_secret_reaches_the_logs(tenant, caplog):
    caplog.set_level(logging.DEBUG)
    subject = user_token(tenant)
    result = get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:read")
    tenant.inject_fault("token", status=500)
    tenant.inject_fault("token", status=500)
    with pytest.raises(TokenExchangeError) as failure:
        get_token_on_behalf_of(subject, DOWNSTREAM, "calendar:write")

    text = caplog.text + repr(failure.value) + str(failure.value)
    assert "failed" in caplog.text
    for secret in (subject, result["access_token"], tenant.client_secret):
        assert secret not in text
        assert secret[-20:] not in text


class OnBehalfOfView(APIView):
    authentication_classes = [Auth0Authentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        result = request.auth.on_behalf_of(DOWNSTREAM, "calendar:read")
        issued = claims_of(result["access_token"])
        return Response({"sub": issued["sub"], "act": issued["act"], "aud": issued["aud"]})


def test_request_auth_on_behalf_of_exchanges_the_incoming_token(tenant):
    subject = user_token(tenant, sub="auth0|carol", act={"sub": "claude-desktop"})
    request = APIRequestFactory().get("/tool", HTTP_AUTHORIZATION=f"Bearer {subject}")

    response = OnBehalfOfView.as_view()(request)

    assert response.status_code == 200, response.data
    assert response.data == {
        "sub": "auth0|carol",
        "act": {"sub": tenant.client_id, "act": {"sub": "claude-desktop"}},
        "aud": DOWNSTREAM,
    }
    assert tenant.token_requests[0].subject_token == subject

"""Exchange failures: the tenant's errors verbatim, bounded retries, and the DRF mapping."""

from __future__ import annotations

import pytest
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_auth0_obo import token_endpoint
from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import ExchangedToken
from tests.exchange_support import DOWNSTREAM, THIS_API, configure, user_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(auth0_tenant, settings, monkeypatch):
    monkeypatch.setattr(token_endpoint, "RETRY_BACKOFF", 0.01)
    return configure(auth0_tenant, settings)


def exchange_error(subject: str, audience: str = DOWNSTREAM, scope: str | None = None):
    with pytest.raises(TokenExchangeError) as failure:
        get_token_on_behalf_of(subject, audience, scope)
    return failure.value


def test_an_unknown_audience_is_the_tenants_invalid_target_verbatim(tenant):
    error = exchange_error(user_token(tenant), "https://nowhere.example.com")

    assert (error.error, error.status_code) == ("invalid_target", 400)
    assert error.error_description == "Service not found: https://nowhere.example.com."
    assert tenant.count("token") == 1


def test_an_audience_without_a_grant_is_access_denied(tenant):
    tenant.add_api("https://billing.example.com", ["billing:read"])

    error = exchange_error(user_token(tenant), "https://billing.example.com")

    assert (error.error, error.status_code) == ("access_denied", 403)
    assert error.error_description == "The client has no user-subject grant for this audience."


def test_an_ungranted_scope_is_invalid_scope(tenant):
    error = exchange_error(user_token(tenant), DOWNSTREAM, "calendar:delete")

    assert (error.error, error.status_code) == ("invalid_scope", 400)


def test_an_expired_subject_token_is_invalid_grant(tenant):
    error = exchange_error(user_token(tenant, iat=1_600_000_000))

    assert (error.error, error.status_code) == ("invalid_grant", 401)
    assert error.error_description == "Invalid subject token."


def test_a_token_for_another_api_is_invalid_grant(tenant):
    error = exchange_error(tenant.mint(audience="https://api.example.com"))

    assert error.error == "invalid_grant"
    assert "not issued for this client's API" in error.error_description


def test_a_client_not_allowed_to_exchange_is_unauthorized_client(auth0_tenant, settings):
    auth0_tenant.add_client(
        "plain-api-client", "secret", api=THIS_API, grants={DOWNSTREAM: []}, obo_enabled=False
    )
    configure(auth0_tenant, settings, CLIENT_ID="plain-api-client", CLIENT_SECRET="secret")

    error = exchange_error(user_token(auth0_tenant))

    assert (error.error, error.status_code) == ("unauthorized_client", 403)


def test_a_wrong_client_secret_is_invalid_client_and_never_echoed(auth0_tenant, settings):
    configure(auth0_tenant, settings, CLIENT_SECRET="wrong-secret-value")

    error = exchange_error(user_token(auth0_tenant))

    assert (error.error, error.status_code) == ("invalid_client", 401)
    assert "wrong-secret-value" not in f"{error} {error!r} {error.error_description}"


def test_a_failure_is_never_cached(tenant):
    subject = user_token(tenant)
    tenant.inject_fault("token", status=400, body={"error": "invalid_request"}, times=1)

    exchange_error(subject)
    assert not ExchangedToken.objects.exists()
    result = get_token_on_behalf_of(subject, DOWNSTREAM)

    assert result["access_token"]
    assert tenant.count("token") == 2


def test_a_short_retry_after_is_waited_out_once(tenant):
    tenant.inject_fault("token", status=429, headers={"Retry-After": "0"})

    result = get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)

    assert result["access_token"]
    assert tenant.count("token") == 2


def test_a_long_retry_after_is_raised_with_the_wait(tenant):
    tenant.inject_fault(
        "token",
        status=429,
        body={"error": "too_many_requests", "error_description": "Rate limit exceeded."},
        headers={"Retry-After": "30"},
    )

    error = exchange_error(user_token(tenant))

    assert (error.error, error.error_description) == ("too_many_requests", "Rate limit exceeded.")
    assert (error.status_code, error.retry_after) == (429, 30.0)
    assert tenant.count("token") == 1


def test_a_429_is_retried_at_most_once(tenant):
    tenant.inject_fault("token", status=429, headers={"Retry-After": "0"}, times=3)

    error = exchange_error(user_token(tenant))

    assert (error.status_code, error.retry_after) == (429, 0.0)
    assert tenant.count("token") == 2


def test_a_429_without_retry_after_is_raised_at_once(tenant):
    tenant.inject_fault("token", status=429)

    error = exchange_error(user_token(tenant))

    assert (error.status_code, error.retry_after) == (429, None)
    assert tenant.count("token") == 1


def test_a_server_error_is_retried_once(tenant):
    tenant.inject_fault("token", status=503)

    assert get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)["access_token"]
    assert tenant.count("token") == 2


def test_two_server_errors_raise_the_tenants_error(tenant):
    body = {"error": "temporarily_unavailable", "error_description": "Try later."}
    tenant.inject_fault("token", status=503, body=body, times=2)

    error = exchange_error(user_token(tenant))

    assert (error.error, error.error_description, error.status_code) == (
        "temporarily_unavailable",
        "Try later.",
        503,
    )
    assert tenant.count("token") == 2


def test_a_dropped_connection_is_retried_once(tenant):
    tenant.inject_fault("token", close=True)

    assert get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)["access_token"]
    assert tenant.count("token") == 2


def test_two_dropped_connections_are_a_502_connection_error(tenant):
    tenant.inject_fault("token", close=True, times=2)

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("connection_error", 502)


def test_a_timeout_is_a_504_and_not_retried(auth0_tenant, settings):
    configure(auth0_tenant, settings, HTTP_TIMEOUT=0.3)
    auth0_tenant.inject_fault("token", status=None, delay=2)

    error = exchange_error(user_token(auth0_tenant))

    assert (error.error, error.status_code) == ("timeout", 504)
    assert auth0_tenant.count("token") == 1


@pytest.mark.parametrize(
    "body",
    [
        "<html>not json</html>",
        ["a", "list"],
        {"token_type": "Bearer", "expires_in": 3600},
        {"access_token": "", "expires_in": 3600},
        {"access_token": "x.y.z", "expires_in": "soon"},
        {"access_token": "x.y.z", "expires_in": -5},
    ],
)
def test_a_malformed_success_is_a_502_invalid_response(tenant, body):
    tenant.inject_fault("token", status=200, body=body)

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 502)
    assert not ExchangedToken.objects.exists()


def test_an_error_without_an_oauth_body_keeps_the_status(tenant):
    tenant.inject_fault("token", status=404, body="<html>Not Found</html>")

    error = exchange_error(user_token(tenant))

    assert (error.error, error.status_code) == ("invalid_response", 404)
    assert error.error_description == "The token endpoint answered HTTP 404."


def test_retry_after_accepts_an_http_date(tenant):
    tenant.inject_fault(
        "token", status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )

    assert get_token_on_behalf_of(user_token(tenant), DOWNSTREAM)["access_token"]
    assert tenant.count("token") == 2


# -- the DRF boundary ------------------------------------------------------------------------


class CallsDownstream(APIView):
    """A view that lets TokenExchangeError escape, as most views will."""

    authentication_classes = []
    permission_classes = [AllowAny]
    subject = ""

    def get(self, request):
        return Response(get_token_on_behalf_of(self.subject, DOWNSTREAM, "calendar:read"))


@pytest.fixture
def drf_handler(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "EXCEPTION_HANDLER": "django_auth0_obo.api_exceptions.exception_handler",
    }


def test_a_timed_out_exchange_is_a_504(auth0_tenant, settings, drf_handler):
    configure(auth0_tenant, settings, HTTP_TIMEOUT=0.3)
    auth0_tenant.inject_fault("token", status=None, delay=2)

    response = CallsDownstream.as_view(subject=user_token(auth0_tenant))(
        APIRequestFactory().get("/")
    )

    assert response.status_code == 504
    assert response.data["error"] == "timeout"


def test_other_exceptions_still_get_drfs_answers(drf_handler):
    class Forbidden(APIView):
        authentication_classes = []
        permission_classes = [AllowAny]

        def get(self, request):
            from rest_framework.exceptions import PermissionDenied

            raise PermissionDenied("no")

    response = Forbidden.as_view()(APIRequestFactory().get("/"))

    assert response.status_code == 403
    assert response.data == {"detail": "no"}

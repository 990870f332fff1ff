"""Injected faults: what a tenant does on a bad day, on demand."""

from __future__ import annotations

import http.client
import ssl
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from django_auth0_obo.testing import LocalTenant


def test_a_fault_applies_once_by_default(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("jwks", status=503)

    first = http.get(tenant.jwks_uri, timeout=5)
    second = http.get(tenant.jwks_uri, timeout=5)

    assert first.status_code == 503
    assert first.json()["error"] == "temporarily_unavailable"
    assert second.status_code == 200
    assert tenant.count("jwks") == 2


def test_times_limits_and_none_means_forever(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("discovery", status=500, times=2)
    statuses = [http.get(tenant.discovery_url, timeout=5).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]

    tenant.inject_fault("discovery", status=500, times=None)
    statuses = [http.get(tenant.discovery_url, timeout=5).status_code for _ in range(3)]
    assert statuses == [500, 500, 500]

    tenant.clear_faults()
    assert http.get(tenant.discovery_url, timeout=5).status_code == 200


def test_malformed_bodies_are_sent_verbatim(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("jwks", status=200, body=b"not json")

    response = http.get(tenant.jwks_uri, timeout=5)

    assert response.status_code == 200
    assert response.content == b"not json"


def test_dict_bodies_and_headers(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("jwks", status=200, body={"keys": "nope"}, headers={"X-Test": "1"})

    response = http.get(tenant.jwks_uri, timeout=5)

    assert response.json() == {"keys": "nope"}
    assert response.headers["X-Test"] == "1"


def test_rate_limit_with_retry_after(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("token", status=429, headers={"Retry-After": "2"})

    response = http.post(tenant.token_endpoint, data={"grant_type": "x"}, timeout=5)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"] == "too_many_requests"
    assert tenant.token_requests[-1].status == 429


def test_slow_answers(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("jwks", status=None, delay=0.3)

    started = time.monotonic()
    response = http.get(tenant.jwks_uri, timeout=5)

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200


def test_slow_answers_trip_client_timeouts(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("jwks", status=None, delay=1.0)

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(tenant.jwks_uri, timeout=0.2)


def test_dropped_connections(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("discovery", close=True)

    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(tenant.discovery_url, timeout=5)
    assert http.get(tenant.discovery_url, timeout=5).status_code == 200


def test_faults_by_path(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("/.well-known/jwks.json", status=502)

    assert http.get(tenant.jwks_uri, timeout=5).status_code == 502


def test_unknown_endpoint_names_are_refused(tenant: LocalTenant) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        tenant.inject_fault("jwk")


def test_reset_clears_faults(tenant: LocalTenant, http: requests.Session) -> None:
    tenant.inject_fault("jwks", status=500, times=None)

    tenant.reset()

    assert http.get(tenant.jwks_uri, timeout=5).status_code == 200


def test_a_delayed_request_that_outlives_a_reset_is_neither_answered_nor_logged(
    tenant: LocalTenant,
) -> None:
    # A client that gave up on a slow answer leaves the handler sleeping; if it answered after
    # the next test's reset it would land in that test's ``token_requests``.
    tenant.inject_fault("token", status=None, delay=2.0)
    address = urlsplit(tenant.base_url)
    context = ssl.create_default_context(cafile=tenant.ca_bundle)
    connection = http.client.HTTPSConnection(
        address.hostname or "127.0.0.1", address.port, context=context, timeout=30
    )
    form = {"grant_type": "client_credentials", "client_id": tenant.client_id}
    form["client_secret"] = tenant.client_secret
    form["audience"] = tenant.default_audience
    connection.request(
        "POST",
        "/oauth/token",
        body=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    deadline = time.monotonic() + 10
    while tenant.count("token") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the request has arrived and is sleeping on its fault
    assert tenant.count("token") == 1

    tenant.reset()

    with pytest.raises(http.client.RemoteDisconnected):
        connection.getresponse()
    connection.close()
    assert tenant.token_requests == []
    assert tenant.count("token") == 0


def test_a_trickled_answer_arrives_whole_one_byte_at_a_time(
    tenant: LocalTenant, http: requests.Session
) -> None:
    tenant.inject_fault("jwks", status=200, body=b"slow", headers={"X-Test": "1"}, trickle=0.001)

    response = http.get(tenant.jwks_uri, timeout=5, stream=True)
    first = response.raw.read(1)
    rest = response.raw.read()

    assert response.status_code == 200
    assert response.headers["X-Test"] == "1"
    assert first + rest == b"slow"


def test_a_trickled_normal_answer_is_the_normal_answer(
    tenant: LocalTenant, http: requests.Session
) -> None:
    tenant.inject_fault("discovery", status=None, trickle=0.0001)

    response = http.get(tenant.discovery_url, timeout=30)

    assert response.json()["issuer"] == tenant.issuer


def test_trickle_must_not_be_negative(tenant: LocalTenant) -> None:
    with pytest.raises(ValueError, match="trickle"):
        tenant.inject_fault("token", trickle=-1)

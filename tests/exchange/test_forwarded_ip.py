"""FORWARD_USER_IP: exchanges made while serving a request send ``auth0-forwarded-for``."""

from __future__ import annotations

import threading
from typing import Any

import jwt
import pytest
from django.db import connections
from rest_framework.test import APIClient

from django_auth0_obo import forwarded_ip
from django_auth0_obo.exchange import get_token_on_behalf_of
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.surface_urls")]

PROXY = "tests.surface_urls.TrustedProxyMiddleware"


@pytest.fixture
def tenant(auth0_tenant: Any, settings: Any) -> Any:
    return configure(auth0_tenant, settings, FORWARD_USER_IP=True)


def exchange_through_view(tenant: Any, **extra: Any) -> Any:
    token = user_token(tenant)
    response = APIClient().post("/exchange", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)
    assert response.status_code == 200, response.content
    return request_for(tenant, token)


def request_for(tenant: Any, token: str) -> Any:
    """The token request that exchanged ``token`` (ignoring strays a slow fault may log late)."""
    (request,) = [r for r in tenant.token_requests if r.subject_token == token]
    return request


def test_the_end_users_ip_reaches_the_tenant(tenant: Any) -> None:
    request = exchange_through_view(tenant, REMOTE_ADDR="198.51.100.23")
    assert request.forwarded_for == "198.51.100.23"


def test_the_ip_is_the_one_django_sees_after_the_projects_proxy_handling(
    tenant: Any, settings: Any
) -> None:
    settings.MIDDLEWARE = [PROXY, *settings.MIDDLEWARE]
    request = exchange_through_view(
        tenant, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert request.forwarded_for == "203.0.113.9"


def test_forwarding_headers_are_never_read_by_the_app_itself(tenant: Any) -> None:
    request = exchange_through_view(
        tenant, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert request.forwarded_for == "10.0.0.2"  # a client cannot choose what Auth0 sees


def test_ipv6_is_sent_in_canonical_form(tenant: Any) -> None:
    request = exchange_through_view(tenant, REMOTE_ADDR="2001:DB8:0:0::1")
    assert request.forwarded_for == "2001:db8::1"


def test_off_by_default(tenant: Any, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "FORWARD_USER_IP": False}
    request = exchange_through_view(tenant, REMOTE_ADDR="198.51.100.23")
    assert request.forwarded_for is None


@pytest.mark.parametrize(
    ("why", "remote_addr"),
    [
        ("not an address", "not-an-ip"),
        ("header injection", "1.2.3.4\r\nX-Evil: 1"),
        ("a list", "1.2.3.4, 5.6.7.8"),
        ("empty", ""),
    ],
)
def test_only_a_valid_ip_is_ever_sent(tenant: Any, why: str, remote_addr: str) -> None:
    request = exchange_through_view(tenant, REMOTE_ADDR=remote_addr)
    assert request.forwarded_for is None, why


def test_nothing_is_sent_outside_a_request(tenant: Any) -> None:
    exchange_through_view(tenant, REMOTE_ADDR="198.51.100.23")
    # Same thread, request over: a background job's exchange must not inherit that user's IP.
    token = user_token(tenant, sub="auth0|other")
    get_token_on_behalf_of(token, DOWNSTREAM)
    assert request_for(tenant, token).forwarded_for is None


def test_code_outside_drf_can_name_the_ip(tenant: Any) -> None:
    token = user_token(tenant)
    with forwarded_ip.user_ip("192.0.2.1"):
        get_token_on_behalf_of(token, DOWNSTREAM)
    assert request_for(tenant, token).forwarded_for == "192.0.2.1"


@pytest.mark.django_db(transaction=True)
def test_each_thread_forwards_its_own_user(tenant: Any) -> None:
    seen: dict[str, str | None] = {}

    def work(ip: str) -> None:
        try:
            with forwarded_ip.user_ip(ip):
                barrier.wait()
                get_token_on_behalf_of(user_token(tenant, sub=f"auth0|{ip}"), DOWNSTREAM)
        finally:
            connections.close_all()

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=work, args=(ip,)) for ip in ("192.0.2.10", "192.0.2.20")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for request in tenant.token_requests:
        if not request.subject_token:
            continue
        sub = jwt.decode(request.subject_token, options={"verify_signature": False})["sub"]
        seen[sub] = request.forwarded_for
    assert seen["auth0|192.0.2.10"] == "192.0.2.10"
    assert seen["auth0|192.0.2.20"] == "192.0.2.20"

"""Operators see refusals and exchanges in the logs (with ``extra=`` fields, never a token), and
receivers get ``token_rejected`` and ``scope_denied`` signals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from django_auth0_obo import signals
from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.testing import CALENDAR_API, LocalTenant
from tests.exchange_support import configure, user_token

pytestmark = pytest.mark.django_db

MCP = "mcp-server-client"


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    def on_rejected(sender: Any, **kwargs: Any) -> None:
        seen.append(("token_rejected", kwargs))

    def on_scope(sender: Any, **kwargs: Any) -> None:
        seen.append(("scope_denied", kwargs))

    signals.token_rejected.connect(on_rejected)
    signals.scope_denied.connect(on_scope)
    yield seen
    signals.token_rejected.disconnect(on_rejected)
    signals.scope_denied.disconnect(on_scope)


def records(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


def test_a_rejected_token_is_logged_with_its_reason_and_signalled(
    auth0_tenant: LocalTenant,
    api_client: Any,
    caplog: pytest.LogCaptureFixture,
    received: list[Any],
) -> None:
    caplog.set_level(logging.INFO, logger="django_auth0_obo")
    token = auth0_tenant.mint(expires_in=-3600)

    response = api_client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401
    [record] = records(caplog, "django_auth0_obo.auth")
    assert record.levelno == logging.INFO
    assert record.auth0_obo_event == "token_rejected"
    assert record.auth0_obo_error == "invalid_token"
    assert record.auth0_obo_reason
    assert record.auth0_obo_path == "/api/whoami"
    assert token not in caplog.text
    [(name, kwargs)] = received
    assert name == "token_rejected"
    assert (kwargs["error"], kwargs["status_code"]) == ("invalid_token", 401)
    assert token not in repr(kwargs["description"])


@pytest.mark.parametrize(
    ("claims", "reason", "signal"),
    [
        (
            {"act": {"sub": "rogue"}, "azp": "rogue", "scope": "calendar:read"},
            "actor_not_allowed",
            None,
        ),
        (
            {"act": {"sub": MCP}, "azp": MCP, "scope": "calendar:write"},
            "insufficient_scope",
            "scope_denied",
        ),
    ],
    ids=["actor", "scope"],
)
def test_actor_and_scope_refusals_are_logged_and_scope_refusals_signalled(
    auth0_tenant: LocalTenant,
    api_client: Any,
    caplog: pytest.LogCaptureFixture,
    received: list[Any],
    claims: dict[str, Any],
    reason: str,
    signal: str | None,
) -> None:
    caplog.set_level(logging.INFO, logger="django_auth0_obo")
    token = auth0_tenant.mint(audience=CALENDAR_API, **claims)

    response = api_client.get("/api/calendar/events", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 403
    [record] = records(caplog, "django_auth0_obo.permissions")
    assert (record.auth0_obo_reason, record.auth0_obo_actor) == (reason, claims["act"]["sub"])
    assert record.auth0_obo_path == "/api/calendar/events"
    assert token not in caplog.text
    assert [name for name, _ in received] == ([signal] if signal else [])
    if signal:
        assert received[0][1]["required_scopes"] == ("calendar:read",)


def test_exchange_misses_hits_and_failures_are_logged(
    auth0_tenant: LocalTenant, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_auth0_obo")
    tenant = configure(auth0_tenant, settings)
    subject = user_token(tenant)

    get_token_on_behalf_of(subject, CALENDAR_API, "calendar:read")
    get_token_on_behalf_of(subject, CALENDAR_API, "calendar:read")
    with pytest.raises(TokenExchangeError):
        get_token_on_behalf_of(subject, "https://unknown-api.example.com")

    events = [
        (r.auth0_obo_event, r.levelno, r.auth0_obo_audience)
        for r in records(caplog, "django_auth0_obo.exchange")
    ]
    assert events == [
        ("exchange_miss", logging.INFO, CALENDAR_API),
        ("exchange_hit", logging.DEBUG, CALENDAR_API),
        ("exchange_failed", logging.WARNING, "https://unknown-api.example.com"),
    ]
    assert subject not in caplog.text
    assert tenant.client_secret not in caplog.text

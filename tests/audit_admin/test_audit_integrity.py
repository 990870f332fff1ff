"""The audit trail cannot be evaded or forged: values a database cannot store are escaped (never
a lost row), a failed write is loud, unverified subjects are marked, hidden admin columns cannot
be probed by querystring, CSV cells cannot become formulas, and error reports hide raw tokens.

Run it on PostgreSQL too (``DATABASE_URL=postgres://…``): PostgreSQL refuses NUL in text and
jsonb, which SQLite stores.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import OperationalError, connection
from django.test import Client
from django.urls import include, path
from django.utils import timezone
from django.views.debug import ExceptionReporter
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_auth0_obo import audit, crypto, signals
from django_auth0_obo.admin.delegation_events import csv_cell
from django_auth0_obo.exceptions import TokenExchangeError
from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.models import DelegationEvent, ExchangedToken
from django_auth0_obo.testing import LocalTenant
from django_auth0_obo.verified import VerifiedToken
from tests.exchange_support import DOWNSTREAM, configure, user_token

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

MCP = "mcp-server-client"


class FileView(APIView):
    """A free-text route: the client chooses the path."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request, name: str) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("", include("testproject.urls")),
    path("files/<path:name>", FileView.as_view()),
]


@dataclass(frozen=True)
class Stored:
    url: str
    claims: dict[str, Any]
    field: str
    expected: Any


ROWS = {
    "NUL in the path (%00)": Stored("/files/a%00b", {}, "path", "/files/a\\u0000b"),
    "NUL in the subject": Stored("/files/x", {"sub": "auth0|a\x00b"}, "subject", "auth0|a\\u0000b"),
    "NUL in the chain": Stored(
        "/files/x",
        {"act": {"sub": "agent\x00", "act": {"sub": MCP}}, "azp": "agent\x00"},
        "delegation_chain",
        ["agent\\u0000", MCP],
    ),
    "NUL in org_id and jti": Stored(
        "/files/x", {"org_id": "org\x00", "claims": {"jti": "\x00"}}, "org_id", "org\\u0000"
    ),
    "a lone surrogate in a claim": Stored(
        "/files/x", {"sub": "auth0|\ud800"}, "subject", "auth0|\\ud800"
    ),
    "a literal backslash-u cannot pose as an escape": Stored(
        "/files/x", {"sub": "auth0|\\u0000"}, "subject", "auth0|\\\\u0000"
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_unstorable_characters_are_escaped_and_the_row_is_kept(
    row: Stored, auth0_tenant: LocalTenant, api_client: Any, caplog: Any
) -> None:
    claims = {"act": {"sub": MCP}, "azp": MCP, **row.claims}
    token = auth0_tenant.mint(**claims)
    with caplog.at_level(logging.WARNING, logger="django_auth0_obo"):
        response = api_client.get(row.url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    event = DelegationEvent.objects.get()
    assert getattr(event, row.field) == row.expected
    assert not [r for r in caplog.records if "audit row" in r.getMessage()]


def test_a_failed_audit_write_logs_an_error_and_sends_a_signal(
    auth0_tenant: LocalTenant, api_client: Any, caplog: Any
) -> None:
    failures: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        failures.append(kwargs)

    def refuse_audit_inserts(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "delegationevent" in sql.lower() and sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("disk full")
        return execute(sql, params, many, context)

    token = auth0_tenant.mint(act={"sub": MCP}, azp=MCP)
    signals.audit_write_failed.connect(receiver)
    try:
        with (
            caplog.at_level(logging.ERROR, logger="django_auth0_obo"),
            connection.execute_wrapper(refuse_audit_inserts),
        ):
            response = api_client.get("/files/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    finally:
        signals.audit_write_failed.disconnect(receiver)
    assert response.status_code == 200
    failure = failures[0]  # the writer thread may retry (and fail) again meanwhile
    assert isinstance(failure["error"], OperationalError)
    assert [row["path"] for row in failure["rows"]] == ["/files/x"]
    assert token not in repr(failures)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0] == (
        "Could not write 1 delegation audit row(s) (OperationalError); kept for the next flush."
    )
    assert audit.flush() == 1  # the database is back: the kept row is written
    assert DelegationEvent.objects.get().path == "/files/x"


SUBJECTS = {
    "raw string, tenant refused: the caller's unverified word": (False, False),
    "VerifiedToken, tenant refused: verified here": (True, True),
}


@pytest.mark.parametrize(("verify", "expected"), SUBJECTS.values(), ids=SUBJECTS.keys())
def test_a_failed_exchange_marks_an_unverified_subject(
    verify: bool, expected: bool, auth0_tenant: LocalTenant
) -> None:
    raw = auth0_tenant.mint(sub="auth0|claimed-admin")
    subject: Any = VerifiedToken(raw, {"sub": "auth0|claimed-admin"}) if verify else raw
    with pytest.raises(TokenExchangeError):
        get_token_on_behalf_of(subject, "https://unknown.example.com")
    event = DelegationEvent.objects.get(kind="exchange")
    assert (event.outcome, event.subject, event.subject_verified) == (
        "denied",
        "auth0|claimed-admin",
        expected,
    )


def test_a_successful_raw_string_exchange_counts_as_verified_by_the_tenant(
    auth0_tenant: LocalTenant, settings: Any
) -> None:
    configure(auth0_tenant, settings)
    get_token_on_behalf_of(user_token(auth0_tenant), DOWNSTREAM)
    assert DelegationEvent.objects.get(kind="exchange").subject_verified is True


# The exchanged-token admin.

CHANGELIST = "/admin/django_auth0_obo/exchangedtoken/"


@pytest.fixture
def viewer() -> Client:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_exchangedtoken"))
    client = Client()
    client.force_login(user)
    now = timezone.now()
    ExchangedToken.objects.create(
        key="k" * 64,
        subject="auth0|alice",
        audience="https://calendar-api.example.com",
        encrypted_token=crypto.encrypt_token("secret-token"),
        expires_at=now + timedelta(hours=1),
        cached_until=now + timedelta(hours=1),
    )
    return client


LOOKUPS = {
    "ciphertext prefix": ("encrypted_token__startswith=gAAAA", 400),
    "ciphertext exact": ("encrypted_token=x", 400),
    "ciphertext regex": ("encrypted_token__regex=.", 400),
    "key exact": ("key=" + "k" * 64, 400),
    "key prefix": ("key__startswith=k", 400),
    "a shown column still filters": ("subject=auth0|alice", 200),
    "the admin's own filter": ("audience=https://calendar-api.example.com", 200),
}


@pytest.mark.parametrize(("query", "status"), LOOKUPS.values(), ids=LOOKUPS.keys())
def test_hidden_columns_cannot_be_probed_by_querystring(
    query: str, status: int, viewer: Client
) -> None:
    response = viewer.get(f"{CHANGELIST}?{query}")
    assert response.status_code == status


# CSV export.

CELLS = {
    "formula": ("=SUM(A1)", "'=SUM(A1)"),
    "plus": ("+1", "'+1"),
    "minus": ("-1", "'-1"),
    "at": ("@cmd", "'@cmd"),
    "tab": ("\tx", "'\tx"),
    "carriage return": ("\rx", "'\rx"),
    "line feed": ("\n=1", "'\n=1"),
    "spaces before a formula": ("  =1+1", "'  =1+1"),
    "a non-breaking space before a formula": ("\u00a0@x", "'\u00a0@x"),
    "plain text": ("auth0|alice", "auth0|alice"),
    "text with a later equals sign": ("a=b", "a=b"),
    "a number": (3, "3"),
    "nothing": (None, ""),
}


@pytest.mark.parametrize(("value", "cell"), CELLS.values(), ids=CELLS.keys())
def testcsv_cells_cannot_become_formulas(value: Any, cell: str) -> None:
    assert csv_cell(value) == cell


# Error reports.


def test_an_error_report_from_inside_authentication_hides_the_raw_token(
    auth0_tenant: LocalTenant, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "USER_RESOLVER": f"{__name__}.boom"}
    token = auth0_tenant.mint()
    request = APIRequestFactory().get("/files/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    view = FileView.as_view()
    try:
        view(request, name="x")
    except RuntimeError:
        exc_type, exc, tb = sys.exc_info()
    else:
        pytest.fail("the resolver did not raise")
    assert tb is not None
    del request
    reporter = ExceptionReporter(None, exc_type, exc, tb.tb_next)
    frames = {f["function"]: dict(f["vars"]) for f in reporter.get_traceback_frames()}
    assert "credentials" in frames["authenticate"]  # its locals are listed, but hidden
    report = reporter.get_traceback_html()  # what error e-mails and the debug page show
    assert token not in report
    assert token.split(".")[2] not in report


def boom(claims: Any) -> Any:
    raise RuntimeError("resolver failed")


TEXTS = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12) | (
    st.sampled_from(["", "a\\b", "\x00", "\ud800", "plain ascii", "é\\"])
)


@given(
    st.recursive(
        TEXTS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
        max_leaves=8,
    )
)
def test_storable_escapes_exactly_nul_lone_surrogates_and_backslash(value: Any) -> None:
    """The fast path for plain ASCII text gives what the escaping rule gives everywhere."""

    def escaped(c: str) -> str:
        if c == "\\":
            return "\\\\"
        if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF:
            return f"\\u{ord(c):04x}"
        return c

    def rule(item: Any) -> Any:
        if isinstance(item, str):
            return "".join(escaped(c) for c in item)
        if isinstance(item, list):
            return [rule(i) for i in item]
        if isinstance(item, dict):
            return {rule(k): rule(v) for k, v in item.items()}
        return item

    assert audit.storable(value) == rule(value)

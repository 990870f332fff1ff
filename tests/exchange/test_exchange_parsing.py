"""Parsers of what the tenant sends back, fuzzed: they answer or raise TokenExchangeError only."""

from __future__ import annotations

import json
import re

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import jose, token_endpoint
from django_auth0_obo.exceptions import TokenExchangeError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4)
    ),
    max_leaves=12,
)
token_fields = st.fixed_dictionaries(
    {},
    optional={
        "access_token": json_values | st.text(min_size=1),
        "expires_in": json_values | st.integers(min_value=-10, max_value=10**6),
        "token_type": json_values,
        "scope": json_values,
        "error": json_values | st.text(min_size=1),
        "error_description": json_values,
    },
)


def response(status: int, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = body
    made.headers.update(headers or {})
    return made


def parse_success(body: bytes) -> dict | TokenExchangeError:
    try:
        return token_endpoint._parse_success(response(200, body))
    except TokenExchangeError as error:
        return error


@given(
    st.one_of(token_fields, json_values).map(lambda v: json.dumps(v).encode())
    | st.binary()
    | st.sampled_from(
        [
            b'{"access_token": "t", "expires_in": Infinity}',
            b'{"expires_in": NaN}',
            b'{"access_token": "t", "token_type": "Bearer", "expires_in": "\xc2\xb2"}',
            b'{"access_token": "t", "token_type": "Bearer", "expires_in": "' + b"9" * 5000 + b'"}',
            b"[" * 100_000,
        ]
    )
)
def test_a_success_body_is_a_token_answer_or_a_502(body):
    parsed = parse_success(body)

    if isinstance(parsed, TokenExchangeError):
        assert (parsed.error, parsed.status_code) == ("invalid_response", 502)
    else:
        assert isinstance(parsed["access_token"], str)
        assert re.fullmatch(r"[\x21-\x7e]+", parsed["access_token"])  # usable in a header
        assert isinstance(parsed["expires_in"], int)
        assert 0 <= parsed["expires_in"] <= token_endpoint.MAX_EXPIRES_IN


def test_an_error_body_nested_too_deep_to_parse_yields_a_generic_description():
    assert token_endpoint._parse_error(response(400, b"[" * 100_000)) == (
        None,
        "The token endpoint answered HTTP 400.",
    )


@given(st.integers(min_value=400, max_value=599), st.one_of(token_fields, json_values))
def test_an_error_body_yields_the_tenants_strings_or_a_generic_description(status, body):
    error, description = token_endpoint._parse_error(response(status, json.dumps(body).encode()))

    assert error is None or (isinstance(error, str) and error)
    assert isinstance(description, str)
    assert description.isprintable()
    assert len(description) <= token_endpoint.MAX_DESCRIPTION_CHARS
    sent = body.get("error") if isinstance(body, dict) else None
    if isinstance(sent, str) and re.fullmatch(r"[ !#-\[\]-~]{1,128}", sent):
        assert error == sent
    else:
        assert error is None


@pytest.mark.parametrize(
    ("body", "error", "description"),
    [
        ({"error": "access_denied", "error_description": "No."}, "access_denied", "No."),
        ({"error": "x\r\nSet-Cookie: a=b"}, None, "The token endpoint answered HTTP 403."),
        ({"error": 'say "hi"'}, None, "The token endpoint answered HTTP 403."),
        ({"error": "e" * 129}, None, "The token endpoint answered HTTP 403."),
        (
            {"error": "invalid_grant", "error_description": "bad\r\nFAKE LOG LINE\x00"},
            "invalid_grant",
            "badFAKE LOG LINE",
        ),
        (
            {"error": "invalid_grant", "error_description": "d" * 100_000},
            "invalid_grant",
            "d" * 511 + "…",
        ),
    ],
    ids=["well formed", "CR/LF in code", "quote in code", "code too long", "control chars", "huge"],
)
def test_the_tenants_error_words_are_bounded_before_anyone_sees_them(body, error, description):
    assert token_endpoint._parse_error(response(403, json.dumps(body).encode())) == (
        error,
        description,
    )


@given(st.text(max_size=60), st.text(max_size=30) | st.integers(0, 10**20).map(str))
def test_retry_after_is_never_negative_never_huge_and_never_raises(value, reset):
    headers = {"Retry-After": value, "x-ratelimit-reset": reset}
    headers = {k: v for k, v in headers.items() if v.isprintable() and v.isascii()}
    wait = token_endpoint.retry_after(response(429, b"", headers))

    assert wait is None or 0 <= wait <= token_endpoint.MAX_BELIEVED_WAIT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_reads_delta_seconds(value, expected):
    assert token_endpoint.retry_after(response(429, b"", {"Retry-After": value})) == expected


@given(st.text(max_size=300))
def test_peeking_at_any_string_returns_a_dict(token):
    assert isinstance(jose.unverified_payload(token), dict)


def test_peeking_reads_the_payload_without_checking_the_signature():
    token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhdXRoMHx1IiwiZXhwIjo0Mn0.not-a-signature"

    assert jose.unverified_payload(token) == {"sub": "auth0|u", "exp": 42}

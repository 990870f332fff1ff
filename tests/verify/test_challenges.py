"""``WWW-Authenticate`` challenges: one builder, every value quoted and cleaned."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import challenges


def header(**kwargs: Any) -> str:
    options: dict[str, Any] = {"realm": "api", "dpop_mode": "allowed", "dpop_algorithms": ["ES256"]}
    return challenges.authenticate_header(**{**options, **kwargs})


def test_without_an_error_both_schemes_are_offered_bare() -> None:
    assert header() == 'Bearer realm="api", DPoP algs="ES256"'


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("disabled", 'Bearer realm="api"'),
        ("allowed", 'Bearer realm="api", DPoP algs="ES256 EdDSA"'),
        ("required", 'DPoP algs="ES256 EdDSA"'),
    ],
)
def test_the_dpop_mode_decides_which_schemes_are_offered(mode: str, expected: str) -> None:
    assert header(dpop_mode=mode, dpop_algorithms=["ES256", "EdDSA"]) == expected


def test_a_bearer_error_goes_on_the_bearer_challenge() -> None:
    error = {"error": "invalid_token", "error_description": "Token has expired."}

    assert header(**error, error_scheme="Bearer") == (
        'Bearer realm="api", error="invalid_token", error_description="Token has expired.", '
        'DPoP algs="ES256"'
    )


def test_a_dpop_error_goes_on_the_dpop_challenge() -> None:
    error = {"error": "invalid_dpop_proof", "error_description": "Replayed proof."}
    assert header(**error, error_scheme="DPoP") == (
        'Bearer realm="api", DPoP algs="ES256", error="invalid_dpop_proof", '
        'error_description="Replayed proof."'
    )


def test_an_error_for_a_scheme_not_offered_goes_on_the_first_challenge() -> None:
    error = {
        "error": "use_dpop_nonce",
        "error_description": "Resource server requires nonce in DPoP proof.",
    }
    assert header(dpop_mode="disabled", **error, error_scheme="DPoP") == (
        'Bearer realm="api", error="use_dpop_nonce", '
        'error_description="Resource server requires nonce in DPoP proof."'
    )


def test_an_invalid_request_error_keeps_its_code() -> None:
    assert 'error="invalid_request"' in header(error="invalid_request")


def test_scope_and_resource_metadata_go_on_every_challenge() -> None:
    value = header(scope="read:data write:data", resource_metadata="https://api.example.com/m")

    assert value == (
        'Bearer realm="api", scope="read:data write:data", '
        'resource_metadata="https://api.example.com/m", DPoP algs="ES256", '
        'scope="read:data write:data", resource_metadata="https://api.example.com/m"'
    )


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ('say "hi"', '"say hi"'),
        ("back\\slash", '"backslash"'),
        ("line\r\nbreak", '"linebreak"'),
        ("tab\there", '"tabhere"'),
        ("caf\u00e9 \u2603", '"caf "'),
        ("x" * 500, '"' + "x" * challenges.MAX_DESCRIPTION_LENGTH + '"'),
    ],
    ids=["quotes", "backslash", "CRLF", "tab", "non-ASCII", "too long"],
)
def test_values_are_cleaned_before_quoting(raw: str, quoted: str) -> None:
    assert challenges.quote(raw) == quoted


def test_parameters_without_a_value_are_left_out() -> None:
    assert (
        challenges.challenge("Bearer", [("realm", "api"), ("error", None)]) == 'Bearer realm="api"'
    )
    assert challenges.challenge("DPoP", []) == "DPoP"


@given(description=st.text(max_size=300))
def test_no_description_can_break_out_of_its_quotes_or_the_header(description: str) -> None:
    value = header(error="invalid_token", error_description=description)

    assert "\r" not in value
    assert "\n" not in value
    assert all(0x20 <= ord(ch) < 0x7F for ch in value)
    start = value.index('error_description="') + len('error_description="')
    assert value[value.index('"', start) :].startswith('", DPoP algs="ES256"')


def test_a_core_error_gives_its_plain_values_and_scheme() -> None:
    from django_auth0_obo.exceptions import InvalidDPoPProof, InvalidToken

    values = challenges.challenge_values(InvalidDPoPProof("Replayed proof."))
    assert header(**values) == (
        'Bearer realm="api", DPoP algs="ES256", error="invalid_dpop_proof", '
        'error_description="Replayed proof."'
    )
    values = challenges.challenge_values(InvalidToken("x").with_scheme("DPoP"))
    assert header(**values).endswith(
        'DPoP algs="ES256", error="invalid_token", error_description="x"'
    )
    assert header(**challenges.challenge_values(None)) == header()
    assert header(**challenges.challenge_values(None, scope="a b")) == header(scope="a b")

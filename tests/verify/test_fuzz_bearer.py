"""Fuzzing the Authorization header and the token: never a 500, always a clean 400 or 401."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from django_auth0_obo.testing import LocalTenant
from django_auth0_obo.testing.jws import encode_jws
from django_auth0_obo.verification import TOKEN_PATTERN, is_b64token
from tests.bearer_support import b64url, challenge_error
from tests.bearer_urls import API

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.bearer_urls")]

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: What a WSGI server can put in a header: latin-1.
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=("Cc",))

schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "DPoP", "dpop", "Basic", "Token", ""])
separators = st.sampled_from([" ", "  ", "\t", "", ", "])
headers = st.one_of(
    st.text(LATIN1, max_size=60),
    st.tuples(schemes, separators, st.text(LATIN1, max_size=60)).map("".join),
    st.tuples(schemes, separators, st.text(B64URL + ".~+/=", max_size=120)).map("".join),
)
segments = st.lists(st.text(B64URL, max_size=40), min_size=0, max_size=5).map(".".join)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def _segment(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def _get(api_client: Any, authorization: str) -> Any:
    return api_client.get("/claims", HTTP_AUTHORIZATION=authorization)


def _assert_clean(response: Any, token: str, statuses: frozenset[int]) -> None:
    assert response.status_code in statuses, response.content
    if response.status_code in (400, 401):
        assert challenge_error(response) in (None, "invalid_request", "invalid_token")
    if len(token) > 8:
        assert token not in response.content.decode("utf-8", "replace")


REFUSED = frozenset({400, 401})


@given(authorization=headers)
def test_any_authorization_header_gets_400_or_401(
    auth0_tenant: LocalTenant, api_client: Any, authorization: str
) -> None:
    response = _get(api_client, authorization)

    _assert_clean(response, authorization, REFUSED)


@given(token=segments)
def test_random_segments_are_refused_as_invalid_tokens(
    auth0_tenant: LocalTenant, api_client: Any, token: str
) -> None:
    response = _get(api_client, f"Bearer {token}")

    _assert_clean(response, token, REFUSED)
    if token:
        assert challenge_error(response) == "invalid_token"


@given(header=json_values, payload=json_values, signature=st.binary(max_size=300))
def test_random_json_with_a_random_signature_is_refused(
    auth0_tenant: LocalTenant, api_client: Any, header: Any, payload: Any, signature: bytes
) -> None:
    token = f"{_segment(header)}.{_segment(payload)}.{b64url(signature)}"

    response = _get(api_client, f"Bearer {token}")

    _assert_clean(response, token, REFUSED)
    assert challenge_error(response) == "invalid_token"


class Relative(int):
    """A time claim drawn as an offset from now: the strategy must not depend on the clock."""


def _resolve_times(payload: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return {k: now + int(v) if isinstance(v, Relative) else v for k, v in payload.items()}


def _mutations(base: dict[str, Any], values: dict[str, Any]) -> Any:
    """``base`` with up to three members replaced by fuzz values and up to two removed."""
    replaced = st.one_of([st.fixed_dictionaries({k: v}) for k, v in values.items()])
    return st.tuples(
        st.lists(replaced, max_size=3), st.sets(st.sampled_from(sorted(base)), max_size=2)
    ).map(
        lambda drawn: {
            k: v
            for k, v in {**base, **{k: v for d in drawn[0] for k, v in d.items()}}.items()
            if k not in drawn[1]
        }
    )


def _header(tenant: LocalTenant) -> Any:
    base = {"alg": "RS256", "kid": tenant.signing_kid, "typ": "JWT"}
    return _mutations(
        base,
        {
            "alg": st.sampled_from(["none", "HS256", "ES256", "PS256", "rs256"]) | json_values,
            "kid": st.sampled_from(["forged", ""]) | json_values,
            "typ": st.sampled_from(["at+jwt", "dpop+jwt", "JOSE"]) | json_values,
            "crit": json_values,
        },
    )


def _payload(tenant: LocalTenant) -> Any:
    times = st.integers(min_value=-10_000, max_value=10_000).map(Relative) | json_values
    base = {
        "iss": tenant.issuer,
        "sub": "auth0|fuzz",
        "aud": API,
        "exp": Relative(600),
        "iat": Relative(0),
    }
    return _mutations(
        base,
        {
            "iss": st.just(tenant.issuer.rstrip("/")) | json_values,
            "sub": st.text(max_size=10) | json_values,
            "aud": st.sampled_from([[API, "x"], ["x"], []]) | json_values,
            "exp": times,
            "iat": times,
            "nbf": times,
            "act": json_values,
            "cnf": json_values,
            "scope": json_values,
        },
    )


@given(data=st.data())
def test_random_claims_signed_by_the_tenant_are_verified_or_cleanly_refused(
    auth0_tenant: LocalTenant, api_client: Any, data: st.DataObject
) -> None:
    header = data.draw(_header(auth0_tenant), label="header")
    payload = _resolve_times(data.draw(_payload(auth0_tenant), label="payload"))
    key = auth0_tenant.keys.signing_key
    token = encode_jws(header, payload, key.private_key, "RS256")

    response = _get(api_client, f"Bearer {token}")

    event(f"status {response.status_code}")
    _assert_clean(response, token, REFUSED | {200})
    if response.status_code == 200:
        assert header["alg"] == "RS256"
        assert payload["iss"] == auth0_tenant.issuer
        assert response.json()["sub"] == payload["sub"]


@given(st.text(B64URL + ".~+/= %@é\x00", max_size=40) | st.text(LATIN1, max_size=40))
def test_the_fast_b64token_check_is_the_rfc_6750_pattern(value: str) -> None:
    """``is_b64token`` (the check in use) accepts exactly what ``TOKEN_PATTERN`` matches."""
    assert is_b64token(value) == bool(TOKEN_PATTERN.fullmatch(value))

"""Hypothesis fuzzing of the ``DPoP`` header through the DRF authentication class: random
strings, random JSON headers and claims (validly signed), and well-formed proofs with random
fields. Whatever arrives, the answer is 400 or 401 — never a 500, never an acceptance."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import dpop
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.testing.jwk_encoding import b64url_encode
from django_auth0_obo.testing.jws import encode_jws

pytestmark = pytest.mark.django_db

URL = "http://testserver/api/whoami"
PATH = "/api/whoami"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(
    st.sampled_from(["typ", "alg", "jwk", "jti", "htm", "htu", "iat", "ath", "nonce", "crit"])
    | st.text(max_size=8),
    json_values,
    max_size=8,
)


@pytest.fixture
def bound(auth0_tenant: LocalTenant, dpop_key: DPoPKey) -> tuple[str, DPoPKey]:
    return auth0_tenant.mint(cnf_jkt=dpop_key.jkt), dpop_key


def _send(client: Any, token: str, proof: str) -> int:
    response = client.get(PATH, HTTP_AUTHORIZATION=f"DPoP {token}", HTTP_DPOP=proof)
    assert response.status_code in (400, 401), (response.status_code, response.content)
    return response.status_code


@given(proof=st.text(max_size=300))
def test_random_strings_as_proof_are_refused(
    proof: str, bound: tuple[str, DPoPKey], api_client: Any
) -> None:
    _send(api_client, bound[0], proof)


@given(
    segments=st.lists(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/",
            max_size=60,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_random_base64ish_segments_are_refused(
    segments: list[str], bound: tuple[str, DPoPKey], api_client: Any
) -> None:
    _send(api_client, bound[0], ".".join(segments))


@given(header=json_objects, claims=json_objects)
def test_random_json_headers_and_claims_are_refused(
    header: dict[str, Any], claims: dict[str, Any], bound: tuple[str, DPoPKey], api_client: Any
) -> None:
    token, key = bound
    _send(api_client, token, encode_jws(header, claims, key.private_key, key.alg))


@given(header=json_values, claims=json_values)
def test_json_that_is_not_an_object_is_refused(
    header: Any, claims: Any, bound: tuple[str, DPoPKey], api_client: Any
) -> None:
    token, _ = bound
    segments = [b64url_encode(json.dumps(part).encode()) for part in (header, claims)]
    _send(api_client, token, ".".join([*segments, "c2ln"]))


WRONG = {
    "htm": json_values.filter(lambda v: v != "GET"),
    "htu": json_values.filter(lambda v: not isinstance(v, str) or not v.startswith("http")),
    "iat": json_values.filter(lambda v: not isinstance(v, int | float) or v < time.time() - 400),
    "ath": json_values,
    "jti": json_values.filter(lambda v: not isinstance(v, str) or not v),
    "typ": json_values.filter(lambda v: v != "dpop+jwt"),
}


@given(
    wrong=st.sampled_from(sorted(WRONG)).flatmap(
        lambda name: st.tuples(st.just(name), WRONG[name])
    ),
    extra_claims=st.dictionaries(st.sampled_from(["jti", "nonce", "x", "cnf"]), json_values),
    extra_headers=st.dictionaries(st.sampled_from(["kid", "x5c", "jku", "cty"]), json_values),
)
def test_well_formed_proofs_with_a_random_wrong_field_are_refused(
    wrong: tuple[str, Any],
    extra_claims: dict[str, Any],
    extra_headers: dict[str, Any],
    bound: tuple[str, DPoPKey],
    api_client: Any,
) -> None:
    token, key = bound
    name, value = wrong
    headers: dict[str, Any] = dict(extra_headers)
    claims: dict[str, Any] = dict(extra_claims)
    (headers if name == "typ" else claims)[name] = value
    if value == dpop.access_token_hash(token):
        return  # the one right ath value; hypothesis will not find it
    _send(
        api_client, token, key.proof("GET", URL, access_token=token, claims=claims, headers=headers)
    )


@given(
    # at least one member: an empty jwk= makes the stand-in use the real key
    jwk=st.dictionaries(
        st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d", "k"]), json_values, min_size=1
    )
)
def test_random_jwks_are_refused(
    jwk: dict[str, Any], bound: tuple[str, DPoPKey], api_client: Any
) -> None:
    token, key = bound
    _send(api_client, token, key.proof("GET", URL, access_token=token, jwk=jwk))

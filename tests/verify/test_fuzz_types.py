"""Type confusion across all JOSE parsing: every member of every JOSE object, given a value of
each JSON type (string, integer, float, boolean, null, list, object).

Wherever the verifier reads a member — the token header and claims, the DPoP proof header, its
``jwk`` and claims, the tenant's JWKS entries — a value of the wrong type is refused with 400 or
401 (or, in a JWKS, the entry is skipped), and never answers 500. Members the verifier does not
read may hold anything: the request is then accepted or refused, still never a 500.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import keys
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.testing.jws import encode_jws
from tests.bearer_support import challenge_error
from tests.bearer_urls import API

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.bearer_urls")]

DPOP_URL = "http://testserver/claims"

#: One strategy per JSON type.
TYPES: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(max_size=10),
    "int": st.integers(min_value=-(2**70), max_value=2**70),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "None": st.none(),
    "list": st.lists(st.text(max_size=4) | st.integers(), max_size=3),
    "dict": st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.integers(), max_size=3),
}
NUMBER = ("int", "float")


def wrong(*right: str) -> st.SearchStrategy[Any]:
    """A value of any JSON type but ``right``."""
    return st.one_of([strategy for name, strategy in TYPES.items() if name not in right])


ANY = wrong()


def members(
    data: st.DataObject, table: dict[str, st.SearchStrategy[Any]], label: str
) -> dict[str, Any]:
    """One to three members of ``table``, each with a value drawn from its strategy."""
    names = data.draw(
        st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=3, unique=True), label=label
    )
    return {name: data.draw(table[name], label=f"{label}.{name}") for name in names}


def _assert_refused(response: Any, *codes: str) -> None:
    assert response.status_code in (400, 401), (response.status_code, response.content)
    assert challenge_error(response) in codes, response.headers.get("WWW-Authenticate")


def _assert_no_server_error(response: Any) -> None:
    assert response.status_code in (200, 400, 401, 403), (response.status_code, response.content)


# The access token -------------------------------------------------------------------------------

#: Header members the verifier reads, with the values that are wrong for them.
TOKEN_HEADER = {"alg": wrong("str"), "typ": wrong("str"), "kid": wrong("str"), "crit": ANY}
#: Claims the verifier reads, with the values that are wrong for them.
TOKEN_CLAIMS = {
    "iss": wrong("str"),
    "sub": wrong("str"),
    "aud": wrong("str", "list"),
    "exp": wrong(*NUMBER),
    "iat": wrong(*NUMBER),
    "nbf": wrong(*NUMBER),
    "scope": wrong("str"),
    "permissions": wrong("list"),
    "act": wrong("dict"),
    "cnf": ANY,  # any cnf in a Bearer token is refused: bound or malformed
}
#: Claims the verifier does not read: anything goes, but never a 500.
FREE_CLAIMS = {name: ANY for name in ("azp", "client_id", "org_id", "jti", "gty", "x-custom")}


def _token(tenant: LocalTenant, header: dict[str, Any], claims: dict[str, Any]) -> str:
    now = int(time.time())
    base = {"iss": tenant.issuer, "sub": "auth0|fuzz", "aud": API, "iat": now, "exp": now + 600}
    signing_key = tenant.keys.signing_key
    full_header = {"alg": "RS256", "typ": "JWT", "kid": tenant.signing_kid, **header}
    return encode_jws(full_header, {**base, **claims}, signing_key.private_key, "RS256")


def _bearer(api_client: Any, tenant: LocalTenant, data: st.DataObject, where: str) -> Any:
    """A request with a tenant-signed token whose ``where`` (header, claims or free claims)
    holds one to three members drawn from that table."""
    drawn = members(
        data, {"header": TOKEN_HEADER, "claims": TOKEN_CLAIMS}.get(where, FREE_CLAIMS), where
    )
    header, claims = (drawn, {}) if where == "header" else ({}, drawn)
    token = _token(tenant, header, claims)
    return api_client.get("/claims", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize("where", ["header", "claims"])
@given(data=st.data())
def test_token_members_of_the_wrong_type_are_invalid_token(
    auth0_tenant: LocalTenant, api_client: Any, data: st.DataObject, where: str
) -> None:
    _assert_refused(_bearer(api_client, auth0_tenant, data, where), "invalid_token")


@given(data=st.data())
def test_token_claims_the_verifier_does_not_read_may_hold_any_type(
    auth0_tenant: LocalTenant, api_client: Any, data: st.DataObject
) -> None:
    _assert_no_server_error(_bearer(api_client, auth0_tenant, data, "free claims"))


# The DPoP proof ---------------------------------------------------------------------------------

PROOF_HEADER = {"typ": wrong("str"), "alg": wrong("str"), "jwk": wrong("dict"), "crit": ANY}
#: Members of the proof's ``jwk`` that make the key, with the values that are wrong for them.
PROOF_JWK = {name: wrong("str") for name in ("kty", "crv", "x", "y", "alg")}
#: Members of the ``jwk`` the verifier does not read, and private members (always refused).
FREE_JWK = {name: ANY for name in ("kid", "use", "key_ops", "x5c", "ext")}
PRIVATE_JWK = {name: ANY for name in ("d", "k", "p")}
PROOF_CLAIMS = {
    "jti": wrong("str"),
    "htm": wrong("str"),
    "htu": wrong("str"),
    "iat": wrong(*NUMBER),
    "ath": wrong("str"),
}


def _dpop(api_client: Any, tenant: LocalTenant, key: DPoPKey, **proof: Any) -> Any:
    token = tenant.mint(cnf_jkt=key.jkt)
    return api_client.get(
        "/claims",
        HTTP_AUTHORIZATION=f"DPoP {token}",
        HTTP_DPOP=key.proof("GET", DPOP_URL, access_token=token, **proof),
    )


def _proof_changes(data: st.DataObject, key: DPoPKey, where: str) -> dict[str, Any]:
    """``DPoPKey.proof`` arguments putting one to three drawn members into ``where``."""
    if where == "headers":
        return {"headers": members(data, PROOF_HEADER, where)}
    if where == "claims":
        return {"claims": members(data, PROOF_CLAIMS, where)}
    table = {"jwk": PROOF_JWK, "private jwk": PRIVATE_JWK}.get(where, FREE_JWK)
    return {"jwk": {**key.public_jwk, **members(data, table, where)}}


@pytest.mark.parametrize("where", ["headers", "jwk", "private jwk", "claims"])
@given(data=st.data())
def test_proof_members_of_the_wrong_type_are_invalid_dpop_proof(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, data: st.DataObject, where: str
) -> None:
    changes = _proof_changes(data, dpop_key, where)
    _assert_refused(_dpop(api_client, auth0_tenant, dpop_key, **changes), "invalid_dpop_proof")


@given(data=st.data())
def test_proof_jwk_members_the_verifier_does_not_read_may_hold_any_type(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, data: st.DataObject
) -> None:
    changes = _proof_changes(data, dpop_key, "free jwk")
    _assert_no_server_error(_dpop(api_client, auth0_tenant, dpop_key, **changes))


# The tenant's JWKS ------------------------------------------------------------------------------

JWKS_ENTRY = {name: ANY for name in ("kid", "kty", "alg", "use", "n", "e", "crv", "x", "key_ops")}


@given(data=st.data())
def test_jwks_entries_with_members_of_any_type_are_skipped_never_a_server_error(
    auth0_tenant: LocalTenant, api_client: Any, data: st.DataObject
) -> None:
    good = auth0_tenant.jwks()["keys"][0]
    odd = {**good, "kid": "odd", **members(data, JWKS_ENTRY, "entry")}
    keys.forget_issuer(auth0_tenant.issuer)
    auth0_tenant.inject_fault("jwks", status=200, body={"keys": [odd, good]}, times=None)
    try:
        valid = api_client.get("/claims", HTTP_AUTHORIZATION=f"Bearer {auth0_tenant.mint()}")
        odd_kid = auth0_tenant.mint(headers={"kid": "odd"})
        signed_for_odd = api_client.get("/claims", HTTP_AUTHORIZATION=f"Bearer {odd_kid}")
    finally:
        auth0_tenant.clear_faults()

    assert valid.status_code == 200, valid.content
    _assert_no_server_error(signed_for_odd)

"""Minted access tokens: Auth0's shape by default, anything a negative test needs on demand."""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt
import pytest

from django_auth0_obo.testing import (
    REMOVE,
    LocalTenant,
    decode_unverified,
    sign_hs256_raw,
    tamper_header,
    tamper_payload,
    tamper_signature,
    unsigned_token,
)
from django_auth0_obo.testing.jwk_encoding import b64url_decode


def test_defaults_look_like_an_auth0_access_token(tenant: LocalTenant) -> None:
    before = int(time.time())
    header, claims = decode_unverified(tenant.mint())

    assert header == {"alg": "RS256", "typ": "JWT", "kid": tenant.signing_kid}
    assert claims["iss"] == tenant.issuer
    assert claims["sub"] == "auth0|user123"
    assert claims["aud"] == "https://api.example.com"
    assert claims["azp"] == "client-app"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 3600
    assert not {"scope", "act", "cnf", "org_id", "permissions", "nbf"} & set(claims)


def test_minted_tokens_verify_with_the_published_key(tenant: LocalTenant) -> None:
    public_key = tenant.keys.signing_key.public_key
    token = tenant.mint(audience=["https://api.example.com", f"{tenant.issuer}userinfo"])

    claims = jwt.decode(
        token,
        public_key,
        algorithms=["RS256"],
        audience="https://api.example.com",
        issuer=tenant.issuer,
    )

    assert claims["sub"] == "auth0|user123"


def test_all_claim_arguments(tenant: LocalTenant) -> None:
    act = {"sub": "mcp-server-client", "act": {"sub": "agent-1", "act": {"sub": "agent-0"}}}

    _, claims = decode_unverified(
        tenant.mint(
            sub="auth0|alice",
            audience="https://mcp.example.com",
            scope=["calendar:read", "calendar:write"],
            permissions=["read:all"],
            act=act,
            azp="mcp-server-client",
            org_id="org_123",
            cnf_jkt="thumb",
            iat=1_000,
            nbf=1_010,
            expires_in=60,
            issuer="https://evil.example.com/",
        )
    )

    assert claims == {
        "iss": "https://evil.example.com/",
        "sub": "auth0|alice",
        "aud": "https://mcp.example.com",
        "iat": 1_000,
        "exp": 1_060,
        "azp": "mcp-server-client",
        "scope": "calendar:read calendar:write",
        "permissions": ["read:all"],
        "act": act,
        "org_id": "org_123",
        "cnf": {"jkt": "thumb"},
        "nbf": 1_010,
    }


def test_claims_merge_and_remove(tenant: LocalTenant) -> None:
    _, claims = decode_unverified(
        tenant.mint(claims={"sub": "other", "custom": [1], "iat": REMOVE}, omit=["azp"])
    )

    assert claims["sub"] == "other"
    assert claims["custom"] == [1]
    assert "iat" not in claims
    assert "azp" not in claims


def test_headers_merge_and_remove(tenant: LocalTenant) -> None:
    header, _ = decode_unverified(tenant.mint(headers={"typ": "at+jwt", "kid": REMOVE}))

    assert header == {"alg": "RS256", "typ": "at+jwt"}


def test_hs256_confusion_token_uses_the_public_key_pem_as_secret(tenant: LocalTenant) -> None:
    token = tenant.mint(algorithm="HS256")

    header, _ = decode_unverified(token)
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(tenant.public_key_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert header["alg"] == "HS256"
    assert header["kid"] == tenant.signing_kid
    assert b64url_decode(signature) == expected


PEMISH = b"-----BEGIN PUBLIC KEY-----\nnot really a key, just bytes\n"


def test_raw_hmac_and_none_helpers() -> None:
    hs = sign_hs256_raw({"sub": "x"}, PEMISH, {"kid": "k"})
    assert jwt.decode(hs, PEMISH, algorithms=["HS256"], options={"verify_aud": False}) == {
        "sub": "x"
    }

    none = unsigned_token({"sub": "x"})
    assert none.endswith(".")
    assert decode_unverified(none)[0]["alg"] == "none"


def test_raw_key_signing(tenant: LocalTenant) -> None:
    stranger = LocalTenant(fresh_keys=True).keys.signing_key.private_key

    token = tenant.mint(key=stranger)

    assert decode_unverified(token)[0]["kid"] == tenant.signing_kid
    with pytest.raises(jwt.InvalidSignatureError):
        tenant.verify(token)


def test_an_unknown_kid_is_written_over_the_signing_key(tenant: LocalTenant) -> None:
    token = tenant.mint(kid="not-published")

    assert decode_unverified(token)[0]["kid"] == "not-published"
    with pytest.raises(KeyError):
        tenant.verify(token)
    signing_key = tenant.keys.signing_key.public_key
    assert jwt.decode(token, signing_key, algorithms=["RS256"], options={"verify_aud": False})


def test_tamper_helpers_break_the_signature(tenant: LocalTenant) -> None:
    token = tenant.mint()
    assert tenant.verify(token)

    for broken in (
        tamper_payload(token, sub="auth0|mallory"),
        tamper_header(token, typ="at+jwt"),
        tamper_signature(token),
    ):
        with pytest.raises(jwt.InvalidSignatureError):
            tenant.verify(broken)
    assert decode_unverified(tamper_payload(token, sub=REMOVE))[1].get("sub") is None


def test_verify_checks_issuer_expiry_and_audience(tenant: LocalTenant) -> None:
    with pytest.raises(jwt.InvalidIssuerError):
        tenant.verify(tenant.mint(issuer="https://elsewhere/"))
    with pytest.raises(jwt.ExpiredSignatureError):
        tenant.verify(tenant.mint(expires_in=-10))
    with pytest.raises(jwt.InvalidAudienceError):
        tenant.verify(tenant.mint(), audience="https://mcp.example.com")
    assert tenant.verify(tenant.mint(audience=["a", "b"]), audience="b")["aud"] == ["a", "b"]

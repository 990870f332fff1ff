"""A table of bad (and a few good) Bearer requests through DRF, each with its exact answer.

Every row asserts the status, the ``WWW-Authenticate`` error code and description, that a
refused request wrote no exchanged token and no audit row, and that the raw token appears
neither in the response nor in the logs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from django_auth0_obo.testing import (
    REMOVE,
    DPoPKey,
    LocalTenant,
    tamper_header,
    tamper_payload,
    tamper_signature,
)
from tests.bearer_support import (
    b64url,
    challenge_description,
    challenge_error,
    mint_with_raw_json,
    nothing_written,
)
from tests.bearer_urls import API, CALENDAR_API

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.bearer_urls")]

OTHER_API = "https://other-api.example.com"

Build = Callable[[LocalTenant, DPoPKey], dict[str, str]]


@dataclass(frozen=True)
class Case:
    build: Build
    status: int
    error: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    path: str = "/claims"


def bearer(make: Callable[[LocalTenant], str]) -> Build:
    """Headers carrying ``Authorization: Bearer <token made by make(tenant)>``."""
    return lambda tenant, key: {"HTTP_AUTHORIZATION": f"Bearer {make(tenant)}"}


def raw(value: str) -> Build:
    return lambda tenant, key: {"HTTP_AUTHORIZATION": value}


def _segments(header: Any, payload: Any, signature: bytes = b"sig") -> str:
    def enc(part: Any) -> str:
        data = part if isinstance(part, bytes) else json.dumps(part).encode()
        return b64url(data)

    return f"{enc(header)}.{enc(payload)}.{b64url(signature)}"


def _valid_payload(tenant: LocalTenant) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": tenant.issuer, "sub": "u", "aud": API, "iat": now, "exp": now + 600}


def _es256_signed_with_kid_of_rsa_key(tenant: LocalTenant) -> str:
    return tenant.mint(key=ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")


def now() -> int:
    """The current time, read when a row builds its request: a time read when the table was
    collected would age by however long the run takes before the row's test runs."""
    return int(time.time())


BOTH_ALGS = {"ALGORITHMS": ["RS256", "ES256"]}

CASES: dict[str, Case] = {
    # Lifetimes
    "expired": Case(bearer(lambda t: t.mint(expires_in=-3600)), 401, "invalid_token"),
    "expired beyond the leeway": Case(
        bearer(lambda t: t.mint(iat=now() - 600, expires_in=500)), 401, "invalid_token"
    ),
    "nbf in the future": Case(bearer(lambda t: t.mint(nbf=now() + 3600)), 401, "invalid_token"),
    "iat in the future": Case(bearer(lambda t: t.mint(iat=now() + 3600)), 401, "invalid_token"),
    "exp beyond any float": Case(
        bearer(lambda t: t.mint(claims={"exp": 10**400, "nbf": -(10**400)})), 200, None
    ),
    "iat beyond any float": Case(
        bearer(lambda t: t.mint(claims={"iat": 10**400})), 401, "invalid_token"
    ),
    "exp not a number": Case(
        bearer(lambda t: t.mint(claims={"exp": str(now() + 600)})), 401, "invalid_token"
    ),
    # Numbers JSON cannot hold: Python reads 1e400 as infinity and accepts NaN; both refused.
    "exp 1e400 (infinity in Python)": Case(
        bearer(lambda t: mint_with_raw_json(t, exp="1e400")), 401, "invalid_token"
    ),
    "exp NaN": Case(bearer(lambda t: mint_with_raw_json(t, exp="NaN")), 401, "invalid_token"),
    "exp Infinity": Case(
        bearer(lambda t: mint_with_raw_json(t, exp="Infinity")), 401, "invalid_token"
    ),
    "iat -1e400": Case(bearer(lambda t: mint_with_raw_json(t, iat="-1e400")), 401, "invalid_token"),
    "nbf -1e400": Case(bearer(lambda t: mint_with_raw_json(t, nbf="-1e400")), 401, "invalid_token"),
    "a custom claim 1e999": Case(
        bearer(lambda t: mint_with_raw_json(t, price="1e999")), 401, "invalid_token"
    ),
    "a finite float exp is fine": Case(
        bearer(lambda t: mint_with_raw_json(t, exp=f"{now() + 600}.5")), 200, None
    ),
    # Audience
    "wrong aud": Case(bearer(lambda t: t.mint(audience=OTHER_API)), 401, "invalid_token"),
    "aud list containing ours is accepted": Case(
        bearer(lambda t: t.mint(audience=[OTHER_API, t.default_audience])), 200, None
    ),
    "empty aud list": Case(bearer(lambda t: t.mint(audience=[])), 401, "invalid_token"),
    "view narrowing refuses another API's token": Case(
        bearer(lambda t: t.mint(audience=API)),
        401,
        "invalid_token",
        {"AUDIENCE": [API, CALENDAR_API]},
        "/calendar",
    ),
    "view narrowing accepts its own API's token": Case(
        bearer(lambda t: t.mint(audience=CALENDAR_API)),
        200,
        None,
        {"AUDIENCE": [API, CALENDAR_API]},
        "/calendar",
    ),
    # Issuer
    "wrong iss": Case(
        bearer(lambda t: t.mint(issuer="https://evil.example.com/")), 401, "invalid_token"
    ),
    "iss without trailing slash": Case(
        bearer(lambda t: t.mint(issuer=t.issuer.rstrip("/"))), 401, "invalid_token"
    ),
    "iss over http": Case(
        bearer(lambda t: t.mint(issuer=t.issuer.replace("https", "http"))), 401, "invalid_token"
    ),
    # Algorithms and keys
    "alg none": Case(bearer(lambda t: t.mint(algorithm="none")), 401, "invalid_token"),
    "HS256 with the public key PEM as secret": Case(
        bearer(lambda t: t.mint(algorithm="HS256")), 401, "invalid_token"
    ),
    "HS256 refused even when the settings list it": Case(
        bearer(lambda t: t.mint(algorithm="HS256")),
        401,
        "invalid_token",
        {"ALGORITHMS": ["RS256", "HS256"]},
    ),
    "alg not in ALGORITHMS": Case(
        bearer(lambda t: t.mint(algorithm="RS384")), 401, "invalid_token"
    ),
    "RSA signature with alg ES256": Case(
        bearer(lambda t: t.mint(headers={"alg": "ES256"})), 401, "invalid_token", BOTH_ALGS
    ),
    "ES256 token naming an RSA kid": Case(
        bearer(_es256_signed_with_kid_of_rsa_key), 401, "invalid_token", BOTH_ALGS
    ),
    "unknown kid": Case(bearer(lambda t: t.mint(kid=t.unpublished_key())), 401, "invalid_token"),
    "no kid": Case(bearer(lambda t: t.mint(headers={"kid": REMOVE})), 401, "invalid_token"),
    "crit header": Case(bearer(lambda t: t.mint(headers={"crit": ["exp"]})), 401, "invalid_token"),
    "wrong typ": Case(bearer(lambda t: t.mint(headers={"typ": "dpop+jwt"})), 401, "invalid_token"),
    "typ at+jwt in any case is accepted": Case(
        bearer(lambda t: t.mint(headers={"typ": "AT+JWT"})), 200, None
    ),
    "typ application/at+jwt is accepted": Case(
        bearer(lambda t: t.mint(headers={"typ": "application/at+jwt"})), 200, None
    ),
    # Tampering
    "tampered payload": Case(
        bearer(lambda t: tamper_payload(t.mint(), sub="auth0|admin")), 401, "invalid_token"
    ),
    "tampered header": Case(
        bearer(lambda t: tamper_header(t.mint(), typ="at+jwt")), 401, "invalid_token"
    ),
    "tampered signature": Case(bearer(lambda t: tamper_signature(t.mint())), 401, "invalid_token"),
    "signature stripped": Case(
        bearer(lambda t: t.mint().rsplit(".", 1)[0] + "."), 401, "invalid_token"
    ),
    # Structure
    "one segment": Case(raw("Bearer abc"), 401, "invalid_token"),
    "two segments": Case(bearer(lambda t: t.mint().rsplit(".", 1)[0]), 401, "invalid_token"),
    "four segments": Case(bearer(lambda t: t.mint() + ".abc"), 401, "invalid_token"),
    "bad base64": Case(
        bearer(lambda t: "~~~~" + t.mint().partition(".")[1] + t.mint().partition(".")[2]),
        401,
        "invalid_token",
    ),
    "impossible base64 length": Case(bearer(lambda t: "a" + t.mint()), 401, "invalid_token"),
    "non-JSON header": Case(
        bearer(lambda t: _segments(b"not json", _valid_payload(t))), 401, "invalid_token"
    ),
    "header not an object": Case(
        bearer(lambda t: _segments(["RS256"], _valid_payload(t))), 401, "invalid_token"
    ),
    "payload not an object": Case(
        bearer(lambda t: _segments({"alg": "RS256", "kid": t.signing_kid}, [1, 2])),
        401,
        "invalid_token",
    ),
    "payload with NaN": Case(
        bearer(lambda t: _segments({"alg": "RS256", "kid": t.signing_kid}, b'{"exp": NaN}')),
        401,
        "invalid_token",
    ),
    # The Authorization header itself
    "empty token": Case(raw("Bearer "), 400, "invalid_request"),
    "token with spaces": Case(raw("Bearer abc def"), 400, "invalid_request"),
    "non-ASCII token": Case(raw("Bearer t\u00e9st"), 400, "invalid_request"),
    "Basic scheme is left to other authenticators": Case(raw("Basic dXNlcjpwYXNz"), 401, None),
    "lowercase scheme is accepted": Case(
        lambda t, k: {"HTTP_AUTHORIZATION": f"bearer {t.mint()}"}, 200, None
    ),
    "two Authorization headers": Case(
        lambda t, k: {"HTTP_AUTHORIZATION": f"Bearer {t.mint()}, Bearer {t.mint(sub='b')}"},
        400,
        "invalid_request",
    ),
    # Required claims
    "missing sub": Case(bearer(lambda t: t.mint(omit=["sub"])), 401, "invalid_token"),
    "empty sub": Case(bearer(lambda t: t.mint(sub="")), 401, "invalid_token"),
    "missing iat": Case(bearer(lambda t: t.mint(omit=["iat"])), 401, "invalid_token"),
    "missing exp": Case(bearer(lambda t: t.mint(omit=["exp"])), 401, "invalid_token"),
    "missing aud": Case(bearer(lambda t: t.mint(omit=["aud"])), 401, "invalid_token"),
    "missing iss": Case(bearer(lambda t: t.mint(omit=["iss"])), 401, "invalid_token"),
    "REQUIRED_CLAIMS missing": Case(
        bearer(lambda t: t.mint()), 401, "invalid_token", {"REQUIRED_CLAIMS": ["org_id"]}
    ),
    "REQUIRED_CLAIMS present is accepted": Case(
        bearer(lambda t: t.mint(org_id="org_1")), 200, None, {"REQUIRED_CLAIMS": ["org_id"]}
    ),
    "scope not a string": Case(
        bearer(lambda t: t.mint(claims={"scope": ["read:data"]})), 401, "invalid_token"
    ),
    # act
    "act not an object": Case(
        bearer(lambda t: t.mint(claims={"act": "mcp-server-client"})), 401, "invalid_token"
    ),
    "act without sub": Case(
        bearer(lambda t: t.mint(act={"client": "mcp-server-client"})), 401, "invalid_token"
    ),
    "act null": Case(bearer(lambda t: t.mint(claims={"act": None})), 401, "invalid_token"),
    "nested act malformed": Case(
        bearer(lambda t: t.mint(act={"sub": "mcp-server-client", "act": {"sub": 7}})),
        401,
        "invalid_token",
    ),
    "well-formed nested act is accepted": Case(
        bearer(lambda t: t.mint(act={"sub": "mcp-server-client", "act": {"sub": "agent"}})),
        200,
        None,
    ),
    # DPoP mixed into Bearer
    "bound token sent as Bearer": Case(
        lambda t, k: {"HTTP_AUTHORIZATION": f"Bearer {t.mint(cnf_jkt=k.jkt)}"},
        401,
        "invalid_token",
    ),
    "malformed cnf": Case(bearer(lambda t: t.mint(claims={"cnf": "x"})), 401, "invalid_token"),
    # Optional strictness (issue 11): RFC 9068 typ and a maximum token age
    "typ JWT when REQUIRE_AT_JWT": Case(
        bearer(lambda t: t.mint()), 401, "invalid_token", {"REQUIRE_AT_JWT": True}
    ),
    "typ at+jwt when REQUIRE_AT_JWT": Case(
        bearer(lambda t: t.mint(headers={"typ": "at+jwt"})), 200, None, {"REQUIRE_AT_JWT": True}
    ),
    "older than MAX_TOKEN_AGE": Case(
        bearer(lambda t: t.mint(iat=now() - 7200, expires_in=10800)),
        401,
        "invalid_token",
        {"MAX_TOKEN_AGE": 3600},
    ),
    "within MAX_TOKEN_AGE": Case(
        bearer(lambda t: t.mint(iat=now() - 1800, expires_in=3600)),
        200,
        None,
        {"MAX_TOKEN_AGE": 3600},
    ),
    "certificate-bound (mTLS) token": Case(
        bearer(
            lambda t: t.mint(
                claims={"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}
            )
        ),
        401,
        "invalid_token",
    ),
    "DPoP header with the Bearer scheme": Case(
        lambda t, k: {
            "HTTP_AUTHORIZATION": f"Bearer {t.mint()}",
            "HTTP_DPOP": k.proof("GET", "http://testserver/claims"),
        },
        400,
        "invalid_request",
    ),
    "Bearer refused when DPoP is required": Case(
        bearer(lambda t: t.mint()), 401, "invalid_token", {"DPOP_MODE": "required"}
    ),
}


#: The ``error_description`` each refused row must carry: short, fixed, never token content.
REASONS: dict[str, str] = {
    "expired": "Token has expired.",
    "expired beyond the leeway": "Token has expired.",
    "nbf in the future": "Token is not yet valid.",
    "iat in the future": "Token was issued in the future.",
    "iat beyond any float": "Token was issued in the future.",
    "exp not a number": "Malformed exp claim.",
    "exp 1e400 (infinity in Python)": "Malformed token.",
    "exp NaN": "Malformed token.",
    "exp Infinity": "Malformed token.",
    "iat -1e400": "Malformed token.",
    "nbf -1e400": "Malformed token.",
    "a custom claim 1e999": "Malformed token.",
    "typ JWT when REQUIRE_AT_JWT": "Token type must be at+jwt.",
    "older than MAX_TOKEN_AGE": "Token is too old.",
    "certificate-bound (mTLS) token": "Certificate-bound tokens (cnf.x5t#S256) are not supported.",
    "wrong aud": "Invalid audience.",
    "empty aud list": "Malformed aud claim.",
    "view narrowing refuses another API's token": "Invalid audience.",
    "wrong iss": "Invalid issuer.",
    "iss without trailing slash": "Invalid issuer.",
    "iss over http": "Invalid issuer.",
    "alg none": "Unsupported token algorithm.",
    "HS256 with the public key PEM as secret": "Unsupported token algorithm.",
    "HS256 refused even when the settings list it": "Unsupported token algorithm.",
    "alg not in ALGORITHMS": "Unsupported token algorithm.",
    "RSA signature with alg ES256": "The signing key does not match the token's algorithm.",
    "ES256 token naming an RSA kid": "The signing key does not match the token's algorithm.",
    "unknown kid": "Unknown signing key.",
    "no kid": "Token has no key id.",
    "crit header": "Unsupported critical header.",
    "wrong typ": "Unsupported token type.",
    "tampered payload": "Invalid signature.",
    "tampered header": "Invalid signature.",
    "tampered signature": "Invalid signature.",
    "signature stripped": "Invalid signature.",
    "one segment": "Malformed token.",
    "two segments": "Malformed token.",
    "four segments": "Malformed token.",
    "bad base64": "Malformed token.",
    "impossible base64 length": "Malformed token.",
    "non-JSON header": "Malformed token.",
    "header not an object": "Malformed token.",
    "payload not an object": "Malformed token.",
    "payload with NaN": "Malformed token.",
    "empty token": "No token in the Authorization header.",
    "token with spaces": "Malformed Authorization header.",
    "non-ASCII token": "Malformed Authorization header.",
    "two Authorization headers": "Malformed Authorization header.",
    "missing sub": "Missing required claim: sub.",
    "empty sub": "Malformed sub claim.",
    "missing iat": "Missing required claim: iat.",
    "missing exp": "Missing required claim: exp.",
    "missing aud": "Missing required claim: aud.",
    "missing iss": "Missing required claim: iss.",
    "REQUIRED_CLAIMS missing": "Missing required claim: org_id.",
    "scope not a string": "Malformed scope claim.",
    "act not an object": "Invalid act claim.",
    "act without sub": "Invalid act claim.",
    "act null": "Invalid act claim.",
    "nested act malformed": "Invalid act claim.",
    "bound token sent as Bearer": "A DPoP-bound token was sent with the Bearer scheme.",
    "malformed cnf": "Malformed cnf claim.",
    "DPoP header with the Bearer scheme": "A DPoP proof was sent with the Bearer scheme.",
    "Bearer refused when DPoP is required": "DPoP-bound tokens are required.",
}


@pytest.mark.parametrize(("name", "case"), list(CASES.items()), ids=list(CASES))
def test_bearer_request_gets_its_exact_answer(
    name: str,
    case: Case,
    auth0_tenant: LocalTenant,
    dpop_key: DPoPKey,
    settings: Any,
    api_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if case.settings:
        settings.AUTH0_OBO = {**settings.AUTH0_OBO, **case.settings}
    headers = case.build(auth0_tenant, dpop_key)
    caplog.set_level(logging.DEBUG, logger="django_auth0_obo")

    response = api_client.get(case.path, **headers)

    assert response.status_code == case.status, response.content
    assert challenge_error(response) == case.error
    assert challenge_description(response) == REASONS.get(name)
    if case.status == 401:
        assert response.headers["WWW-Authenticate"].startswith(
            "DPoP" if case.settings.get("DPOP_MODE") == "required" else 'Bearer realm="api"'
        )
    if case.status != 200:  # an accepted delegated request is audited, on purpose
        assert nothing_written()
    token = headers["HTTP_AUTHORIZATION"].partition(" ")[2].strip()
    if case.error is not None:
        assert f"Rejected {case.error} credentials" in caplog.text  # the logs were captured
    if len(token) > 8:
        assert token not in response.content.decode()
        assert token not in response.headers.get("WWW-Authenticate", "")
        assert token not in caplog.text


def test_the_table_has_at_least_forty_rows_and_a_reason_for_each_refusal() -> None:
    assert len(CASES) >= 40
    refused = {name for name, case in CASES.items() if case.error is not None}
    assert refused == set(REASONS)

"""Table of bad DPoP requests against the example project's ``/api/whoami``.

Each row builds one request and states the status and RFC error code it must get. Every row also
checks the challenge (``DPoP algs=...`` unless DPoP is disabled), that no exchange-cache or audit
row was written and that a refused proof left no replay record (a refused proof must not burn a
``jti``; only a forged signature may, on Redis: see ``SIGNATURE_ONLY``). Rows marked accepted
check the normalisation rules that must *not* refuse a request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.urls import path

from django_auth0_obo import dpop, replay
from django_auth0_obo.models import DelegationEvent, ExchangedToken
from django_auth0_obo.testing import REMOVE, DPoPKey, LocalTenant
from django_auth0_obo.testing.jws import decode_unverified, encode_jws, tamper_signature
from testproject.api.views import WhoAmIView
from tests.bearer_support import sign_with_raw_json

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

URL = "http://testserver/api/whoami"
PATH = "/api/whoami"

urlpatterns = [
    path("api/whoami", WhoAmIView.as_view()),
    path("api/~user", WhoAmIView.as_view()),
    path("api/items;v=1", WhoAmIView.as_view()),
]


@dataclass
class Ctx:
    """What a row needs to build its request."""

    tenant: LocalTenant
    key: DPoPKey
    client: Any
    token: str

    def dpop(self, proof: str | None, token: str | None = None) -> dict[str, str]:
        headers = {"HTTP_AUTHORIZATION": f"DPoP {token or self.token}"}
        if proof is not None:
            headers["HTTP_DPOP"] = proof
        return headers

    def proof(self, method: str = "GET", url: str = URL, **kwargs: Any) -> str:
        kwargs.setdefault("access_token", self.token)
        return self.key.proof(method, url, **kwargs)


@dataclass
class Case:
    id: str
    build: Callable[[Ctx], dict[str, str]]
    status: int
    error: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    path: str = PATH


def _unsigned(c: Ctx) -> dict[str, str]:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": c.key.public_jwk}
    claims = decode_unverified(c.proof())[1]
    return c.dpop(encode_jws(header, claims, None, "none"))


def _hs256(c: Ctx) -> dict[str, str]:
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": c.key.public_jwk}
    claims = decode_unverified(c.proof())[1]
    return c.dpop(encode_jws(header, claims, b"0123456789abcdef0123456789abcdef", "HS256"))


def _other_key_bound(alg: str) -> Callable[[Ctx], dict[str, str]]:
    """A well-formed proof from a key of ``alg``, with a token bound to that key."""

    def build(c: Ctx) -> dict[str, str]:
        key = DPoPKey.generate(alg)
        token = c.tenant.mint(cnf_jkt=key.jkt)
        return c.dpop(key.proof("GET", URL, access_token=token), token)

    return build


def _curve_mismatch(c: Ctx) -> dict[str, str]:
    key = DPoPKey.generate("ES384")
    token = c.tenant.mint(cnf_jkt=key.jkt)
    return c.dpop(key.proof("GET", URL, access_token=token, headers={"alg": "ES256"}), token)


def _rsa_jwk_with_es256(c: Ctx) -> dict[str, str]:
    rsa_key = DPoPKey.generate("RS256")
    return c.dpop(c.proof(jwk=rsa_key.public_jwk))


def _raw(**members: str) -> Callable[[Ctx], dict[str, str]]:
    """A proof whose claims ``members`` are raw JSON text (``iat="1e400"``)."""

    def build(c: Ctx) -> dict[str, str]:
        header, claims = decode_unverified(c.proof())
        return c.dpop(sign_with_raw_json(header, claims, members, c.key.private_key, c.key.alg))

    return build


def _jwk_member(name: str, value: Any) -> Callable[[Ctx], dict[str, str]]:
    """A proof whose header ``jwk`` has member ``name`` set to ``value``."""
    return lambda c: c.dpop(c.proof(jwk={**c.key.public_jwk, name: value}))


def _signed_by_another_key(c: Ctx) -> dict[str, str]:
    other = DPoPKey.generate("ES256")
    return c.dpop(other.proof("GET", URL, access_token=c.token, jwk=c.key.public_jwk))


def _replayed(c: Ctx) -> dict[str, str]:
    headers = c.dpop(c.proof())
    first = c.client.get(PATH, **headers)
    assert first.status_code == 200, first.content
    return headers


def _unbound_token(c: Ctx) -> dict[str, str]:
    token = c.tenant.mint(act={"sub": "mcp-server-client"})
    return c.dpop(c.key.proof("GET", URL, access_token=token), token)


def _jkt_mismatch(c: Ctx) -> dict[str, str]:
    token = c.tenant.mint(cnf_jkt=DPoPKey.generate().jkt, act={"sub": "mcp-server-client"})
    return c.dpop(c.key.proof("GET", URL, access_token=token), token)


def _bearer(c: Ctx, token: str | None = None, proof: str | None = None) -> dict[str, str]:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token or c.token}"}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return headers


def _with_header(segment: str, proof: str) -> str:
    return segment + proof[proof.index(".") :]


def _now() -> int:
    return int(time.time())


BAD = "invalid_dpop_proof"
CASES = [
    Case("missing DPoP header", lambda c: c.dpop(None), 400, "invalid_request"),
    Case("empty DPoP header", lambda c: c.dpop(""), 401, BAD),
    Case("two proofs in one header", lambda c: c.dpop(f"{c.proof()}, {c.proof()}"), 401, BAD),
    Case("not a JWT", lambda c: c.dpop("not-a-jwt"), 401, BAD),
    Case("two segments", lambda c: c.dpop(c.proof().rpartition(".")[0]), 401, BAD),
    Case("four segments", lambda c: c.dpop(c.proof() + ".e30"), 401, BAD),
    Case("header is not JSON", lambda c: c.dpop(_with_header("bm90LWpzb24", c.proof())), 401, BAD),
    Case("header is a JSON list", lambda c: c.dpop(_with_header("WzFd", c.proof())), 401, BAD),
    Case("wrong typ", lambda c: c.dpop(c.proof(headers={"typ": "JWT"})), 401, BAD),
    Case("typ missing", lambda c: c.dpop(c.proof(headers={"typ": REMOVE})), 401, BAD),
    Case("alg none", _unsigned, 401, BAD),
    Case(
        "alg none in a signed proof", lambda c: c.dpop(c.proof(headers={"alg": "none"})), 401, BAD
    ),
    Case("alg HS256", _hs256, 401, BAD),
    Case("alg HS256 even when listed", _hs256, 401, BAD, {"DPOP_ALGORITHMS": ["ES256", "HS256"]}),
    Case("alg ES384 when only ES256 is allowed", _other_key_bound("ES384"), 401, BAD),
    Case("alg RS256 when only ES256 is allowed", _other_key_bound("RS256"), 401, BAD),
    Case("jwk missing", lambda c: c.dpop(c.proof(headers={"jwk": REMOVE})), 401, BAD),
    Case("jwk not an object", lambda c: c.dpop(c.proof(headers={"jwk": "key"})), 401, BAD),
    Case("jwk with private d", lambda c: c.dpop(c.proof(jwk=c.key.private_jwk)), 401, BAD),
    Case("jwk symmetric", lambda c: c.dpop(c.proof(jwk={"kty": "oct", "k": "c2VjcmV0"})), 401, BAD),
    Case("jwk of curve P-384 with alg ES256", _curve_mismatch, 401, BAD),
    Case("jwk of an RSA key with alg ES256", _rsa_jwk_with_es256, 401, BAD),
    # Members of the wrong JSON type are refused, never a server error.
    Case("jwk.crv a list", _jwk_member("crv", ["P-256"]), 401, BAD),
    Case("jwk.crv an object", _jwk_member("crv", {"P-256": True}), 401, BAD),
    Case("jwk.kty a list", _jwk_member("kty", ["EC"]), 401, BAD),
    Case("jwk.kty an object", _jwk_member("kty", {}), 401, BAD),
    Case("jwk.x a number", _jwk_member("x", 12345), 401, BAD),
    Case("jwk.y null", _jwk_member("y", None), 401, BAD),
    Case("jwk.alg a list", _jwk_member("alg", ["ES256"]), 401, BAD),
    Case("alg a list", lambda c: c.dpop(c.proof(headers={"alg": ["ES256"]})), 401, BAD),
    Case("typ an object", lambda c: c.dpop(c.proof(headers={"typ": {}})), 401, BAD),
    Case("htm a list", lambda c: c.dpop(c.proof(claims={"htm": ["GET"]})), 401, BAD),
    Case("jti an object", lambda c: c.dpop(c.proof(claims={"jti": {"a": 1}})), 401, BAD),
    Case("ath a list", lambda c: c.dpop(c.proof(claims={"ath": [1]})), 401, BAD),
    Case("iat 1e400 (infinity in Python)", _raw(iat="1e400"), 401, BAD),
    Case("iat -1e400", _raw(iat="-1e400"), 401, BAD),
    Case("iat NaN", _raw(iat="NaN"), 401, BAD),
    Case("crit header", lambda c: c.dpop(c.proof(headers={"crit": ["exp"]})), 401, BAD),
    Case("bad signature", lambda c: c.dpop(tamper_signature(c.proof())), 401, BAD),
    Case("signed by another key than the jwk", _signed_by_another_key, 401, BAD),
    Case("htm mismatch", lambda c: c.dpop(c.proof("POST")), 401, BAD),
    Case("htm lower-case", lambda c: c.dpop(c.proof("get")), 401, BAD),
    Case("htu other path", lambda c: c.dpop(c.proof(url="http://testserver/api/other")), 401, BAD),
    Case(
        "htu other host", lambda c: c.dpop(c.proof(url="http://evil.example/api/whoami")), 401, BAD
    ),
    Case(
        "htu other scheme", lambda c: c.dpop(c.proof(url="https://testserver/api/whoami")), 401, BAD
    ),
    Case("htu missing", lambda c: c.dpop(c.proof(omit=("htu",))), 401, BAD),
    Case("htu not a string", lambda c: c.dpop(c.proof(claims={"htu": 42})), 401, BAD),
    Case("iat too old", lambda c: c.dpop(c.proof(iat=_now() - 400)), 401, BAD),
    Case("iat in the future", lambda c: c.dpop(c.proof(iat=_now() + 120)), 401, BAD),
    Case("iat missing", lambda c: c.dpop(c.proof(omit=("iat",))), 401, BAD),
    Case("iat a string", lambda c: c.dpop(c.proof(iat=str(_now()))), 401, BAD),
    Case("iat a boolean", lambda c: c.dpop(c.proof(iat=True)), 401, BAD),
    Case("jti missing", lambda c: c.dpop(c.proof(omit=("jti",))), 401, BAD),
    Case("jti empty", lambda c: c.dpop(c.proof(claims={"jti": ""})), 401, BAD),
    Case("jti too long", lambda c: c.dpop(c.proof(jti="j" * 300)), 401, BAD),
    Case("ath missing", lambda c: c.dpop(c.proof(access_token=None)), 401, BAD),
    Case("ath of another token", lambda c: c.dpop(c.proof(access_token="other.token.x")), 401, BAD),
    Case("jkt mismatch: proof key is not cnf.jkt", _jkt_mismatch, 401, BAD),
    Case("replay of the same proof", _replayed, 401, BAD),
    Case("token without cnf.jkt sent with the DPoP scheme", _unbound_token, 401, "invalid_token"),
    Case(
        "DPoP scheme when DPOP_MODE is disabled",
        lambda c: c.dpop(c.proof()),
        400,
        "invalid_request",
        {"DPOP_MODE": "disabled"},
    ),
    Case(
        "Bearer when DPOP_MODE is required",
        lambda c: _bearer(c, token=c.tenant.mint(act={"sub": "mcp-server-client"})),
        401,
        "invalid_token",
        {"DPOP_MODE": "required"},
    ),
    Case("DPoP-bound token sent as Bearer", lambda c: _bearer(c), 401, "invalid_token"),
    Case(
        "DPoP header sent with the Bearer scheme",
        lambda c: _bearer(c, token=c.tenant.mint(), proof=c.proof()),
        400,
        "invalid_request",
    ),
    # Normalisation that must be accepted.
    Case(
        "htu with query and fragment is normalised",
        lambda c: c.dpop(c.proof(url=URL + "?a=1#f")),
        200,
        None,
    ),
    Case(
        "htu with %7E matches ~",
        lambda c: c.dpop(c.proof(url="http://testserver/api/%7Euser")),
        200,
        None,
        path="/api/~user",
    ),
    Case(
        "htu with ~ matches a request for %7E",
        lambda c: c.dpop(c.proof(url="http://testserver/api/~user")),
        200,
        None,
        path="/api/%7Euser",
    ),
    Case(
        "htu with upper-case scheme, host and default port",
        lambda c: c.dpop(c.proof(url="HTTP://TestServer:80/api/whoami")),
        200,
        None,
    ),
    Case(  # Django's request URL escapes them (escape_uri_path); the client need not
        "htu with ; and = matches the request naming them",
        lambda c: c.dpop(c.proof(url="http://testserver/api/items;v=1")),
        200,
        None,
        path="/api/items;v=1",
    ),
    Case(
        "htu with %3B and %3D matches ; and =",
        lambda c: c.dpop(c.proof(url="http://testserver/api/items%3Bv%3D1")),
        200,
        None,
        path="/api/items;v=1",
    ),
    Case(  # an escaped slash is not a segment boundary: another path to the client
        "htu with %2F does not match a request for /",
        lambda c: c.dpop(c.proof(url="http://testserver/api%2Fwhoami")),
        401,
        "invalid_dpop_proof",
    ),
]


#: Rows whose proof passes every check but its signature. On Redis the replay record is sent
#: before the signature is verified, to overlap the two, so such a proof may leave a record;
#: other backends write it only after the signature passed.
SIGNATURE_ONLY = frozenset({"bad signature", "signed by another key than the jwk"})


def _www_authenticate_error(header: str) -> str | None:
    match = re.search(r'error="([^"]+)"', header)
    return match.group(1) if match else None


def _replay_record_exists(proof: str | None) -> bool:
    """Whether a replay record exists for this proof (False when it cannot be parsed)."""
    if not proof:
        return False
    try:
        header, claims = decode_unverified(proof)
        record = (dpop.jwk_thumbprint(header["jwk"]), dpop.comparable_htu(claims["htu"]))
        jti = claims["jti"]
        key = replay.replay_key(*record, jti)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    if isinstance(caches["default"], LocMemCache):  # its records are the process's own
        return replay.local_records.expiry(replay.record_digest(*record, jti)) is not None
    return caches["default"].get(key) is not None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_dpop_request_is_refused_with_its_rfc_error(
    case: Case, auth0_tenant: LocalTenant, dpop_key: DPoPKey, api_client: Any, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIT": "all", **case.settings}
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt, act={"sub": "mcp-server-client"})
    ctx = Ctx(tenant=auth0_tenant, key=dpop_key, client=api_client, token=token)
    headers = case.build(ctx)
    events_before = DelegationEvent.objects.count()

    response = api_client.get(case.path, **headers)

    assert response.status_code == case.status, response.content
    challenge = response.headers.get("WWW-Authenticate", "")
    if case.status == 200:
        assert response.json()["scheme"] == "DPoP"
        return
    assert _www_authenticate_error(challenge) == case.error
    if case.settings.get("DPOP_MODE") == "disabled":
        assert "DPoP algs" not in challenge
    else:
        assert 'DPoP algs="' in challenge
    assert ExchangedToken.objects.count() == 0
    assert DelegationEvent.objects.count() == events_before
    if case.id == "replay of the same proof":
        return
    if case.id in SIGNATURE_ONLY and isinstance(caches["default"], RedisCache):
        return  # sent before the signature check: see replay.claim_proof
    assert not _replay_record_exists(headers.get("HTTP_DPOP"))

"""``verify_access_token``: claims, audiences, leeway, and the verified-token memo."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import keys, tokens
from django_auth0_obo.exceptions import InvalidToken
from django_auth0_obo.testing import REMOVE, LocalTenant
from tests.bearer_urls import API, CALENDAR_API, MCP_API

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(auth0_tenant: LocalTenant) -> Iterator[LocalTenant]:
    tokens.clear_memo()
    yield auth0_tenant
    tokens.clear_memo()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    real = time.time
    state = {"offset": 0.0}
    monkeypatch.setattr(time, "time", lambda: real() + state["offset"])

    class Clock:
        def advance(self, seconds: float) -> None:
            state["offset"] += seconds

    return Clock()


@pytest.fixture
def key_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts how often verification needs a key (i.e. did not come from the memo)."""
    seen: list[str] = []
    real = keys.get_verification_key

    def counting(issuer: str, kid: str, alg: str, **options: Any) -> Any:
        seen.append(kid)
        return real(issuer, kid, alg, **options)

    monkeypatch.setattr(keys, "get_verification_key", counting)
    return seen


# Claims -----------------------------------------------------------------------------------------


def test_a_valid_token_returns_its_claims(tenant: LocalTenant) -> None:
    token = tenant.mint(scope="read:data", permissions=["write:data"], org_id="org_1")

    claims = tokens.verify_access_token(token)

    assert claims["sub"] == "auth0|user123"
    assert claims["iss"] == tenant.issuer
    assert claims["scope"] == "read:data"
    assert claims["org_id"] == "org_1"


def test_audiences_default_to_the_settings_and_a_caller_may_narrow_them(
    tenant: LocalTenant, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIENCE": [API, CALENDAR_API]}
    token = tenant.mint(audience=API)

    assert tokens.verify_access_token(token)["aud"] == API
    assert tokens.verify_access_token(token, audiences=[API])["aud"] == API
    assert tokens.verify_access_token(token, audiences=API)["aud"] == API
    with pytest.raises(InvalidToken, match="Invalid audience"):
        tokens.verify_access_token(token, audiences=[CALENDAR_API])
    with pytest.raises(InvalidToken, match="Invalid audience"):
        tokens.verify_access_token(token, audiences=CALENDAR_API)


def test_any_of_several_token_audiences_may_match(tenant: LocalTenant) -> None:
    token = tenant.mint(audience=[f"{tenant.issuer}userinfo", API])

    assert tokens.verify_access_token(token, audiences=[MCP_API, API])["aud"][1] == API


@pytest.mark.parametrize(
    ("leeway", "accepted"), [(30, True), (0, False)], ids=["within leeway", "no leeway"]
)
def test_expiry_allows_the_configured_leeway(
    tenant: LocalTenant, settings: Any, leeway: int, accepted: bool
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "LEEWAY": leeway}
    token = tenant.mint(iat=int(time.time()) - 100, expires_in=90)

    if accepted:
        assert tokens.verify_access_token(token)
    else:
        with pytest.raises(InvalidToken, match="expired"):
            tokens.verify_access_token(token)


def test_nbf_and_iat_slightly_in_the_future_are_within_the_leeway(tenant: LocalTenant) -> None:
    now = int(time.time())

    assert tokens.verify_access_token(tenant.mint(iat=now + 10, nbf=now + 10))


def test_a_token_without_typ_is_accepted(tenant: LocalTenant) -> None:
    from django_auth0_obo.testing import REMOVE

    assert tokens.verify_access_token(tenant.mint(headers={"typ": REMOVE}))


# RFC 9068 strict mode and the maximum token age ------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_strict_mode_accepts_the_rfc_9068_types(
    tenant: LocalTenant, settings: Any, typ: str
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "REQUIRE_AT_JWT": True}
    assert tokens.verify_access_token(tenant.mint(headers={"typ": typ}))["sub"]


@pytest.mark.parametrize(
    "typ", ["JWT", "jwt", "dpop+jwt", "application/jwt", None, ["at+jwt"], {"at+jwt": 1}, REMOVE]
)
def test_strict_mode_refuses_every_other_type(tenant: LocalTenant, settings: Any, typ: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "REQUIRE_AT_JWT": True}
    with pytest.raises(InvalidToken, match="Token type must be at\\+jwt"):
        tokens.verify_access_token(tenant.mint(headers={"typ": typ}))


def test_without_strict_mode_auth0s_default_type_is_accepted(tenant: LocalTenant) -> None:
    assert tokens.verify_access_token(tenant.mint(headers={"typ": "JWT"}))["sub"]


def test_strict_mode_applies_to_tokens_already_in_the_memo(
    tenant: LocalTenant, settings: Any
) -> None:
    token = tenant.mint(headers={"typ": "JWT"})
    tokens.verify_access_token(token)
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "REQUIRE_AT_JWT": True}
    with pytest.raises(InvalidToken, match="at\\+jwt"):
        tokens.verify_access_token(token)


def test_a_header_already_checked_is_judged_again_after_a_settings_change(
    tenant: LocalTenant, settings: Any
) -> None:
    """Token headers are remembered by their bytes once checked; a settings reload forgets
    them, so a new token with the same header meets the new rules."""
    first, second = tenant.mint(sub="auth0|a"), tenant.mint(sub="auth0|b")
    assert first.split(".")[0] == second.split(".")[0]  # the same header bytes
    tokens.verify_access_token(first)
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "ALGORITHMS": ["ES256"]}
    with pytest.raises(InvalidToken, match="Unsupported token algorithm"):
        tokens.verify_access_token(second)


@pytest.mark.parametrize("padding", [0, tokens.MAX_CACHED_HEADER_LENGTH])
def test_large_headers_are_checked_like_small_ones(tenant: LocalTenant, padding: int) -> None:
    """Headers too long to remember are verified all the same, and refused all the same."""
    extra = {"x": "p" * padding}
    assert tokens.verify_access_token(tenant.mint(headers=extra))["sub"]
    with pytest.raises(InvalidToken, match="critical"):
        tokens.verify_access_token(tenant.mint(headers={**extra, "crit": ["exp"]}))
    with pytest.raises(InvalidToken, match="key id"):
        tokens.verify_access_token(tenant.mint(headers={**extra, "kid": ""}))


def test_a_token_older_than_max_token_age_is_refused(tenant: LocalTenant, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "MAX_TOKEN_AGE": 600, "LEEWAY": 30}
    now = int(time.time())
    with pytest.raises(InvalidToken, match="Token is too old"):
        tokens.verify_access_token(tenant.mint(iat=now - 700, expires_in=3600))
    assert tokens.verify_access_token(tenant.mint(iat=now - 620, expires_in=3600))["sub"]


def test_max_token_age_is_off_by_default(tenant: LocalTenant) -> None:
    old = tenant.mint(iat=int(time.time()) - 30 * 24 * 3600, expires_in=31 * 24 * 3600)
    assert tokens.verify_access_token(old)["sub"]


def test_a_remembered_token_is_refused_once_it_is_too_old(
    tenant: LocalTenant, settings: Any, clock: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "MAX_TOKEN_AGE": 600, "LEEWAY": 30}
    token = tenant.mint(iat=int(time.time()) - 600, expires_in=3600)
    tokens.verify_access_token(token)
    tokens.verify_access_token(token)
    clock.advance(31)
    with pytest.raises(InvalidToken, match="Token is too old"):
        tokens.verify_access_token(token)


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_other_asymmetric_algorithms_work_when_allowed(
    tenant: LocalTenant, settings: Any, alg: str
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "ALGORITHMS": ["RS256", alg]}
    kid = tenant.add_key(alg if alg != "PS256" else "PS256")

    claims = tokens.verify_access_token(tenant.mint(kid=kid))

    assert claims["sub"] == "auth0|user123"


@pytest.mark.parametrize(
    "token",
    [None, 42, "", "é.é.é", "a" * (tokens.MAX_TOKEN_LENGTH + 1), "..", "a..b"],
    ids=["none", "int", "empty", "non-ascii", "too long", "dots", "empty payload"],
)
def test_anything_that_is_not_a_compact_jws_is_malformed(tenant: LocalTenant, token: Any) -> None:
    with pytest.raises(InvalidToken, match="Malformed token"):
        tokens.verify_access_token(token)


def test_returned_claims_are_a_copy(tenant: LocalTenant) -> None:
    token = tenant.mint()
    tokens.verify_access_token(token)["sub"] = "auth0|admin"

    assert tokens.verify_access_token(token)["sub"] == "auth0|user123"


def test_nested_claims_handed_out_are_copies_too(tenant: LocalTenant) -> None:
    """A view editing ``request.auth.claims`` must not change what a later request with the
    same token sees (its ``act``, its ``permissions``), whether the memo answered or not."""
    token = tenant.mint(permissions=["read:data"], act={"sub": "client-a", "act": {"sub": "b"}})
    first = tokens.verify_access_token(token)
    first["permissions"].append("admin")
    first["act"]["sub"] = "trusted-client"
    first["act"]["act"]["sub"] = "x"

    again = tokens.verify_access_token(token)  # from the memo
    again["permissions"].append("admin")
    third = tokens.verify_access_token(token)

    assert third["permissions"] == ["read:data"]
    assert third["act"] == {"sub": "client-a", "act": {"sub": "b"}}


def test_a_required_claim_that_is_null_is_missing(tenant: LocalTenant, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "REQUIRED_CLAIMS": ["org_id", "tenant"]}

    with pytest.raises(InvalidToken, match="Missing required claim: org_id"):
        tokens.verify_access_token(tenant.mint(claims={"org_id": None, "tenant": "t"}))
    with pytest.raises(InvalidToken, match="Missing required claim: tenant"):
        tokens.verify_access_token(tenant.mint(claims={"org_id": "o", "tenant": None}))
    falsy_but_present = tenant.mint(claims={"org_id": "", "tenant": 0})
    assert tokens.verify_access_token(falsy_but_present)["tenant"] == 0


# The memo ---------------------------------------------------------------------------------------


def test_a_repeated_token_is_answered_from_the_memo(
    tenant: LocalTenant, key_lookups: list[str]
) -> None:
    token = tenant.mint()

    for _ in range(10):
        tokens.verify_access_token(token)

    assert len(key_lookups) == 1


def test_the_memo_is_keyed_by_a_hash_never_by_the_token(tenant: LocalTenant) -> None:
    token = tenant.mint()
    tokens.verify_access_token(token)

    entries = tokens.remembered_digests()
    assert len(entries) == 1
    digest = next(iter(entries))
    assert isinstance(digest, bytes)
    assert len(digest) == 32
    assert token not in repr(entries)
    assert token.encode() not in digest


def test_the_memo_rechecks_expiry(tenant: LocalTenant, clock: Any) -> None:
    token = tenant.mint(expires_in=60)
    tokens.verify_access_token(token)

    clock.advance(60 + 31)

    with pytest.raises(InvalidToken, match="Token has expired"):
        tokens.verify_access_token(token)


def test_the_memo_rechecks_the_audience(tenant: LocalTenant, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "AUDIENCE": [API, CALENDAR_API]}
    token = tenant.mint(audience=API)
    tokens.verify_access_token(token)

    with pytest.raises(InvalidToken, match="Invalid audience"):
        tokens.verify_access_token(token, audiences=[CALENDAR_API])


def test_memo_entries_never_outlive_the_jwks_ttl(
    tenant: LocalTenant, clock: Any, key_lookups: list[str]
) -> None:
    token = tenant.mint(expires_in=86400)
    tokens.verify_access_token(token)

    clock.advance(599)
    tokens.verify_access_token(token)
    assert len(key_lookups) == 1
    clock.advance(2)
    tokens.verify_access_token(token)
    assert len(key_lookups) == 2


def test_a_remembered_token_is_verified_again_once_the_keys_are_stale(
    tenant: LocalTenant, clock: Any, key_lookups: list[str]
) -> None:
    """The tenant's ``Cache-Control: max-age`` can make the keys stale long before the memo's
    ``JWKS_CACHE_TTL``: a remembered token signed by a key the tenant has since retired must
    stop working at the next refresh, as a token seen for the first time would."""
    tenant.jwks_max_age = 60
    old_kid = tenant.signing_kid
    token = tenant.mint(expires_in=86400)
    tokens.verify_access_token(token)
    tenant.rotate()
    tenant.retire_key(old_kid)

    clock.advance(59)
    tokens.verify_access_token(token)  # keys still fresh: the memo answers
    assert len(key_lookups) == 1
    clock.advance(2)

    with pytest.raises(InvalidToken, match="Unknown signing key"):
        tokens.verify_access_token(token)


def test_a_remembered_token_survives_a_refresh_that_changes_nothing(
    tenant: LocalTenant, clock: Any, key_lookups: list[str]
) -> None:
    tenant.jwks_max_age = 60
    token = tenant.mint(expires_in=86400)
    tokens.verify_access_token(token)

    clock.advance(61)
    tokens.verify_access_token(token)  # verified again: the keys are refreshed
    tokens.verify_access_token(token)  # and remembered again

    assert len(key_lookups) == 2
    assert tenant.count("jwks") == 2


def test_a_settings_reload_clears_the_memo(
    tenant: LocalTenant, settings: Any, key_lookups: list[str]
) -> None:
    token = tenant.mint(org_id="org_1")
    tokens.verify_access_token(token)

    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "REQUIRED_CLAIMS": ["org_id", "tenant"]}

    with pytest.raises(InvalidToken, match="Missing required claim: tenant"):
        tokens.verify_access_token(token)


def test_a_change_of_keys_clears_the_memo(
    tenant: LocalTenant, key_lookups: list[str], settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "JWKS_REFETCH_COOLDOWN": 0}
    token = tenant.mint()
    tokens.verify_access_token(token)
    assert len(tokens.remembered_digests()) == 1

    new_kid = tenant.add_key()
    tokens.verify_access_token(tenant.mint(kid=new_kid))  # refetch: a new JWKS version

    assert len(tokens.remembered_digests()) == 1  # only the token verified after the change
    tokens.verify_access_token(token)
    assert len(key_lookups) == 3


def test_the_memo_is_bounded(tenant: LocalTenant) -> None:
    minted = [tenant.mint(sub=f"user-{i}") for i in range(tokens.MEMO_SIZE + 3)]

    for token in minted:
        tokens.verify_access_token(token)

    remembered = tokens.remembered_digests()
    assert len(remembered) == tokens.MEMO_SIZE
    assert hashlib.sha256(minted[0].encode()).digest() not in remembered  # oldest went first
    assert hashlib.sha256(minted[-1].encode()).digest() in remembered


def test_refused_tokens_are_not_remembered(tenant: LocalTenant) -> None:
    with pytest.raises(InvalidToken):
        tokens.verify_access_token(tenant.mint(audience="https://other.example.com"))

    assert len(tokens.remembered_digests()) == 0


def test_the_memo_is_safe_under_concurrency(tenant: LocalTenant) -> None:
    minted = [tenant.mint(sub=f"user-{i}") for i in range(40)]
    errors: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            for _ in range(20):
                for token in chunk:
                    tokens.verify_access_token(token)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(minted[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(tokens.remembered_digests()) == 40


# Property-based: whatever claims a correctly signed token carries --------------------------------

_claim_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@given(
    overrides=st.dictionaries(
        st.sampled_from(
            ["sub", "aud", "exp", "iat", "nbf", "act", "cnf", "scope", "permissions", "iss"]
        ),
        _claim_value,
        max_size=4,
    ),
    omit=st.sets(st.sampled_from(["sub", "aud", "exp", "iat", "iss"]), max_size=2),
)
def test_signed_tokens_with_arbitrary_claims_are_verified_or_refused_cleanly(
    auth0_tenant: LocalTenant, overrides: dict[str, Any], omit: set[str]
) -> None:
    token = auth0_tenant.mint(claims=overrides, omit=omit)
    try:
        claims = tokens.verify_access_token(token)
    except InvalidToken as error:
        refusal: InvalidToken | None = error
    else:
        refusal = None
    if refusal is not None:
        assert token not in refusal.description
        assert len(refusal.description) < 80
        return
    now = time.time()
    assert isinstance(claims["sub"], str)
    assert claims["sub"]
    assert claims["iss"] == auth0_tenant.issuer
    assert claims["exp"] > now - 30
    assert claims["iat"] <= now + 30
    aud = claims["aud"]
    ours = auth0_tenant.default_audience  # the project's first AUDIENCE
    assert aud == ours or (isinstance(aud, list) and ours in aud)

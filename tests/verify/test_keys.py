"""The tenant's keys: discovery, JWKS, both cache layers, refetch cooldown, rotation, failures.

Everything runs against the local tenant over real HTTPS; its request counters prove what was
fetched. Time is moved forward with the ``clock`` fixture instead of sleeping.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_auth0_obo import jose, keys, tokens
from django_auth0_obo.exceptions import InvalidToken, TenantUnavailable
from django_auth0_obo.testing import LocalTenant
from tests import services

pytestmark = pytest.mark.django_db


class Clock:
    """Moves ``time.time`` forward for the whole process (tokens, keys, Django's cache)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    real = time.time
    state = Clock()
    monkeypatch.setattr(time, "time", lambda: real() + state.offset)
    return state


@pytest.fixture
def tenant(auth0_tenant: LocalTenant) -> Iterator[LocalTenant]:
    """The local tenant with this process's key layer empty and counters at zero."""
    keys.clear_cache()
    auth0_tenant.reset_counts()
    yield auth0_tenant
    keys.clear_cache()


def fetches(tenant: LocalTenant) -> tuple[int, int]:
    return tenant.count("discovery"), tenant.count("jwks")


def warm(tenant: LocalTenant) -> None:
    tokens.verify_access_token(tenant.mint(sub="warm-up"))
    assert fetches(tenant) == (1, 1)


def test_the_first_token_fetches_discovery_and_jwks_once_and_then_never_again(
    tenant: LocalTenant,
) -> None:
    warm(tenant)

    for i in range(20):
        tokens.verify_access_token(tenant.mint(sub=f"user-{i}"))

    assert fetches(tenant) == (1, 1)


def test_discovery_names_the_jwks_uri_that_is_fetched(tenant: LocalTenant) -> None:
    keyset = keys.get_keyset(tenant.issuer)

    assert keyset.jwks_uri == tenant.jwks_uri
    assert set(keyset.keys) == {tenant.signing_kid}
    assert tenant.count("/.well-known/openid-configuration") == 1


def test_another_worker_reads_the_keys_from_the_shared_cache(tenant: LocalTenant) -> None:
    warm(tenant)
    keys.clear_cache()  # a fresh worker: empty per-process layer, same Django cache

    tokens.verify_access_token(tenant.mint())

    assert fetches(tenant) == (1, 1)


def test_a_kid_that_fitted_one_algorithm_is_still_refused_for_another(
    tenant: LocalTenant, settings: Any
) -> None:
    """The key set remembers which (kid, alg) pairs fit; that memo never answers another alg."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "ALGORITHMS": ["RS256", "ES256"]}
    tokens.verify_access_token(tenant.mint())
    keyset = keys.get_keyset(tenant.issuer)
    assert keyset.accepting == {(tenant.signing_kid, "RS256"): keyset.keys[tenant.signing_kid]}

    with pytest.raises(InvalidToken, match="does not match the token's algorithm"):
        tokens.verify_access_token(tenant.mint(headers={"alg": "ES256"}))
    assert (tenant.signing_kid, "ES256") not in keyset.accepting
    tokens.verify_access_token(tenant.mint(sub="again"))  # the remembered pair still answers


def test_the_issuer_is_checked_before_any_fetch(tenant: LocalTenant) -> None:
    with pytest.raises(InvalidToken, match="Invalid issuer"):
        tokens.verify_access_token(tenant.mint(issuer="https://evil.example.com/"))
    with pytest.raises(InvalidToken, match="Invalid issuer"):
        keys.get_verification_key("https://evil.example.com/", tenant.signing_kid, "RS256")

    assert fetches(tenant) == (0, 0)


def test_a_newly_published_key_is_accepted_after_exactly_one_jwks_refetch(
    tenant: LocalTenant,
) -> None:
    warm(tenant)
    kid = tenant.add_key()

    claims = tokens.verify_access_token(tenant.mint(kid=kid))

    assert claims["sub"] == "auth0|user123"
    assert fetches(tenant) == (1, 2)


@pytest.fixture
def process_local_cache(settings: Any, tenant: LocalTenant) -> None:
    """A locmem CACHE_ALIAS: its expiry follows the ``clock`` fixture (Redis keeps real time)."""
    settings.CACHES = {
        **settings.CACHES,
        "keys-local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "CACHE_ALIAS": "keys-local"}


@pytest.mark.usefixtures("process_local_cache")
def test_unknown_kids_refetch_once_per_cooldown(tenant: LocalTenant, clock: Clock) -> None:
    warm(tenant)
    forged = tenant.mint(kid=tenant.unpublished_key())
    late = tenant.unpublished_key()

    with pytest.raises(InvalidToken, match="Unknown signing key"):
        tokens.verify_access_token(forged)
    assert fetches(tenant) == (1, 2)

    tenant.publish_key(late)  # published, but we may not look again yet
    for _ in range(5):
        with pytest.raises(InvalidToken, match="Unknown signing key"):
            tokens.verify_access_token(tenant.mint(kid=late))
    assert fetches(tenant) == (1, 2)

    clock.advance(31)  # JWKS_REFETCH_COOLDOWN is 30 s
    assert tokens.verify_access_token(tenant.mint(kid=late))["iss"] == tenant.issuer
    assert fetches(tenant) == (1, 3)


def test_the_refetch_cooldown_is_shared_by_workers(tenant: LocalTenant) -> None:
    warm(tenant)
    with pytest.raises(InvalidToken):
        tokens.verify_access_token(tenant.mint(kid=tenant.unpublished_key()))
    assert fetches(tenant) == (1, 2)
    keys.clear_cache()  # another worker, sharing the Django cache

    with pytest.raises(InvalidToken, match="Unknown signing key"):
        tokens.verify_access_token(tenant.mint(kid=tenant.unpublished_key()))

    assert fetches(tenant) == (1, 2)


def test_a_zero_cooldown_refetches_for_every_unknown_kid(
    tenant: LocalTenant, settings: Any
) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "JWKS_REFETCH_COOLDOWN": 0}
    warm(tenant)

    for _ in range(3):
        with pytest.raises(InvalidToken):
            tokens.verify_access_token(tenant.mint(kid=tenant.unpublished_key()))

    assert fetches(tenant) == (1, 4)


def test_rotation_without_restart_and_retired_keys_stop_working_within_the_ttl(
    tenant: LocalTenant, clock: Clock
) -> None:
    old_kid = tenant.signing_kid
    old_token = tenant.mint(sub="old")
    tokens.verify_access_token(old_token)

    new_kid = tenant.rotate()
    assert tokens.verify_access_token(tenant.mint(sub="new"))["sub"] == "new"
    tenant.retire_key(old_kid)
    assert tokens.verify_access_token(old_token)["sub"] == "old"  # cached keys, within the TTL

    clock.advance(601)  # JWKS_CACHE_TTL is 600 s
    with pytest.raises(InvalidToken, match="Unknown signing key"):
        tokens.verify_access_token(old_token)
    with pytest.raises(InvalidToken, match="Unknown signing key"):
        tokens.verify_access_token(tenant.mint(kid=old_kid))
    assert tokens.verify_access_token(tenant.mint(kid=new_kid))["iss"] == tenant.issuer


def test_a_failed_refresh_keeps_the_keys_we_have_and_warns_once(
    tenant: LocalTenant, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    warm(tenant)
    clock.advance(601)
    tenant.inject_fault("discovery", status=500, times=None)
    caplog.set_level(logging.WARNING, logger="django_auth0_obo")

    for i in range(5):
        assert tokens.verify_access_token(tenant.mint(sub=f"u{i}"))["sub"] == f"u{i}"

    assert fetches(tenant) == (2, 1)  # one failed attempt, then back off
    assert caplog.text.count("still using the cached keys") == 1

    clock.advance(31)
    tenant.clear_faults()
    tokens.verify_access_token(tenant.mint())
    assert fetches(tenant) == (3, 2)


def test_a_failed_jwks_refresh_keeps_the_keys_too(tenant: LocalTenant, clock: Clock) -> None:
    warm(tenant)
    clock.advance(601)
    tenant.inject_fault("jwks", status=503, times=None)

    assert tokens.verify_access_token(tenant.mint())["iss"] == tenant.issuer
    assert fetches(tenant) == (2, 2)


def test_without_keys_a_down_tenant_is_unavailable_not_an_invalid_token(
    tenant: LocalTenant, clock: Clock
) -> None:
    tenant.inject_fault("discovery", status=503, times=None)
    token = tenant.mint()

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(token)
    with pytest.raises(TenantUnavailable):  # within the back-off: no new attempt
        tokens.verify_access_token(token)
    assert fetches(tenant) == (1, 0)

    tenant.clear_faults()
    clock.advance(31)
    assert tokens.verify_access_token(token)["iss"] == tenant.issuer


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("discovery", {"status": 200, "body": "<html>not json</html>"}),
        ("discovery", {"status": 200, "body": ["not", "an", "object"]}),
        ("discovery", {"status": 404}),
        ("discovery", {"status": None, "close": True}),
        ("jwks", {"status": 200, "body": "{truncated"}),
        ("jwks", {"status": 200, "body": {"keys": "nope"}}),
        ("jwks", {"status": 200, "body": {"keys": []}}),
        ("jwks", {"status": 200, "body": {"no_keys": True}}),
        ("jwks", {"status": 302, "headers": {"Location": "https://evil.example.com/jwks"}}),
    ],
    ids=[
        "discovery not JSON",
        "discovery not an object",
        "discovery 404",
        "discovery connection dropped",
        "JWKS truncated JSON",
        "JWKS keys not a list",
        "JWKS empty",
        "JWKS without keys",
        "JWKS redirect not followed",
    ],
)
def test_a_malformed_answer_from_the_tenant_is_unavailable_and_logged(
    tenant: LocalTenant,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
    fault: dict[str, Any],
) -> None:
    tenant.inject_fault(endpoint, times=None, **fault)
    caplog.set_level(logging.WARNING, logger="django_auth0_obo")

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(tenant.mint())

    assert caplog.records


def test_a_discovery_document_naming_another_issuer_is_refused(tenant: LocalTenant) -> None:
    document = {**tenant.discovery_document(), "issuer": "https://evil.example.com/"}
    tenant.inject_fault("discovery", status=200, body=document, times=None)

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(tenant.mint())
    assert tenant.count("jwks") == 0


def test_a_discovery_document_with_a_plain_http_jwks_uri_is_refused(tenant: LocalTenant) -> None:
    document = {**tenant.discovery_document(), "jwks_uri": tenant.jwks_uri.replace("https", "http")}
    tenant.inject_fault("discovery", status=200, body=document, times=None)

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(tenant.mint())


def test_a_slow_tenant_times_out_as_unavailable(tenant: LocalTenant, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "HTTP_TIMEOUT": 0.3}
    tenant.inject_fault("discovery", status=None, delay=2.0, times=None)

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(tenant.mint())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda jwk, pem: {"kty": "oct", "k": pem, "kid": jwk["kid"]},
        lambda jwk, pem: {**jwk, "use": "enc"},
        lambda jwk, pem: {**jwk, "alg": "HS256"},
        lambda jwk, pem: {**jwk, "d": "AQAB"},
        lambda jwk, pem: {**jwk, "n": "AQAB"},
        lambda jwk, pem: {**jwk, "kty": "EC"},
        lambda jwk, pem: {key: value for key, value in jwk.items() if key != "kid"},
        lambda jwk, pem: "not a key",
    ],
    ids=[
        "symmetric key",
        "encryption key",
        "HMAC alg",
        "private member",
        "RSA key too short",
        "wrong kty",
        "no kid",
        "not an object",
    ],
)
def test_unusable_jwks_entries_are_never_trusted(tenant: LocalTenant, mutate: Any) -> None:
    pem = base64.urlsafe_b64encode(tenant.public_key_pem()).rstrip(b"=").decode()
    jwks = {"keys": [mutate(tenant.jwks()["keys"][0], pem)]}
    tenant.inject_fault("jwks", status=200, body=jwks, times=None)

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(tenant.mint())
    with pytest.raises(InvalidToken):
        tokens.verify_access_token(tenant.mint(algorithm="HS256"))


def test_a_jwk_naming_its_alg_only_verifies_that_alg(tenant: LocalTenant, settings: Any) -> None:
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "ALGORITHMS": ["RS256", "PS256"]}
    key = keys.get_verification_key(tenant.issuer, tenant.signing_kid, "RS256")

    assert key.alg == "RS256"
    assert not key.accepts("PS256")
    with pytest.raises(InvalidToken, match="does not match"):
        tokens.verify_access_token(tenant.mint(algorithm="PS256"))


@pytest.mark.parametrize(
    ("max_age", "freshness"),
    [(60, 60), (6000, 600), (0, keys.MIN_TTL), (None, 600)],
    ids=["shorter max-age wins", "longer max-age is capped by the TTL", "zero has a floor", "none"],
)
def test_cache_control_max_age_shortens_the_ttl(
    tenant: LocalTenant, max_age: int | None, freshness: float
) -> None:
    tenant.jwks_max_age = max_age

    keyset = keys.get_keyset(tenant.issuer)

    assert keyset.fresh_until - keyset.fetched_at == pytest.approx(freshness)


def test_a_short_max_age_makes_the_keys_refresh_sooner(tenant: LocalTenant, clock: Clock) -> None:
    tenant.jwks_max_age = 60
    warm(tenant)

    clock.advance(30)
    tokens.verify_access_token(tenant.mint())
    assert fetches(tenant) == (1, 1)
    clock.advance(31)
    tokens.verify_access_token(tenant.mint())
    assert fetches(tenant) == (2, 2)


def test_key_objects_are_built_once_per_jwks_version(
    tenant: LocalTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = jose.public_key_from_jwk

    def counting(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        built.append(data["kid"])
        return real(data, *args, **kwargs)

    monkeypatch.setattr(jose, "public_key_from_jwk", counting)
    first = keys.get_verification_key(tenant.issuer, tenant.signing_kid, "RS256")
    built_on_fetch = len(built)
    for i in range(20):
        tokens.verify_access_token(tenant.mint(sub=f"user-{i}"))

    assert keys.get_verification_key(tenant.issuer, tenant.signing_kid, "RS256") is first
    assert 1 <= built_on_fetch == len(built)


def test_concurrent_cold_requests_fetch_the_keys_once(tenant: LocalTenant) -> None:
    token_list = [tenant.mint(sub=f"user-{i}") for i in range(8)]
    barrier = threading.Barrier(len(token_list))
    results: list[Any] = []

    def verify(token: str) -> None:
        barrier.wait()
        results.append(tokens.verify_access_token(token)["sub"])

    threads = [threading.Thread(target=verify, args=(t,)) for t in token_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == sorted(f"user-{i}" for i in range(8))
    assert fetches(tenant) == (1, 1)


def test_a_settings_reload_forgets_this_processs_keys(tenant: LocalTenant, settings: Any) -> None:
    warm(tenant)
    assert keys.holds_keys_for(tenant.issuer)

    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "LEEWAY": 10}

    assert not keys.holds_keys_for(tenant.issuer)


def test_prefetch_loads_every_configured_issuer(tenant: LocalTenant) -> None:
    keys.prefetch()

    assert fetches(tenant) == (1, 1)
    assert keys.discovery_url(tenant.issuer) == tenant.discovery_url


# Real worker processes sharing a cache (a file cache; also CACHE_URL's, e.g. Redis) -------------

CHILD = """
import json, sys

from django.conf import settings

data = json.load(sys.stdin)
settings.configure(
    CACHES=data["caches"],
    AUTH0_OBO=data["auth0_obo"],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django_auth0_obo"],
    USE_TZ=True,
)
import django

django.setup()

from django_auth0_obo import tokens
from django_auth0_obo.exceptions import InvalidToken

results = []
for token in data["tokens"]:
    try:
        results.append(tokens.verify_access_token(token)["sub"])
    except InvalidToken as error:
        results.append(error.description)
print(json.dumps(results))
"""


@pytest.fixture(params=services.SHARED_CACHES)
def shared_keys(
    settings: Any, tenant: LocalTenant, request: pytest.FixtureRequest, tmp_path: Path
) -> dict[str, Any]:
    """Point CACHE_ALIAS at a shared cache (a fresh key prefix); return what a child needs."""
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "keys_shared": services.shared_cache(request.param, tmp_path),
    }
    settings.CACHES = {**settings.CACHES, "keys_shared": caches["keys_shared"]}
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "CACHE_ALIAS": "keys_shared"}
    return {"caches": caches, "auth0_obo": settings.AUTH0_OBO}


def run_worker(config: dict[str, Any], token_list: list[str]) -> list[str]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps({**config, "tokens": token_list}),
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_another_process_uses_the_keys_this_one_fetched(
    tenant: LocalTenant, shared_keys: dict[str, Any]
) -> None:
    warm(tenant)

    subs = run_worker(shared_keys, [tenant.mint(sub="worker-a"), tenant.mint(sub="worker-b")])

    assert subs == ["worker-a", "worker-b"]
    assert fetches(tenant) == (1, 1)


def test_the_refetch_cooldown_holds_across_processes(
    tenant: LocalTenant, shared_keys: dict[str, Any]
) -> None:
    warm(tenant)
    with pytest.raises(InvalidToken):
        tokens.verify_access_token(tenant.mint(kid=tenant.unpublished_key()))
    assert fetches(tenant) == (1, 2)

    answers = run_worker(shared_keys, [tenant.mint(kid=tenant.unpublished_key())])

    assert answers == ["Unknown signing key."]
    assert fetches(tenant) == (1, 2)


@pytest.mark.parametrize(
    "odd",
    [
        {"kty": ["RSA"]},
        {"kty": {"RSA": 1}},
        {"kty": 1},
        {"alg": ["RS256"]},
        {"alg": {"name": "RS256"}},
        {"alg": 256},
        {"use": ["sig"]},
        {"kid": ["k"]},
        {"n": 12345},
        {"e": None},
        {"crv": ["P-256"], "kty": "EC"},
    ],
    ids=repr,
)
def test_jwks_entries_with_members_of_the_wrong_type_are_skipped(
    tenant: LocalTenant, odd: dict[str, Any]
) -> None:
    good = tenant.jwks()["keys"][0]
    entry = {**good, "kid": "odd", **odd}
    tenant.inject_fault("jwks", status=200, body={"keys": [entry, good]}, times=None)

    assert tokens.verify_access_token(tenant.mint())["sub"] == "auth0|user123"
    keyset = keys.get_keyset(tenant.issuer)
    assert set(keyset.keys) == {good["kid"]}
    assert len(keyset.skipped) == 1


def test_a_jwks_entry_naming_an_alg_of_another_key_type_is_skipped(tenant: LocalTenant) -> None:
    good = tenant.jwks()["keys"][0]
    jwks = {"keys": [{**good, "kid": "ec-alg", "alg": "ES256"}, good]}
    tenant.inject_fault("jwks", status=200, body=jwks, times=None)

    tokens.verify_access_token(tenant.mint())
    [skipped] = keys.get_keyset(tenant.issuer).skipped
    assert (skipped.kid, skipped.reason) == ("ec-alg", "jwk does not match its alg")


def test_a_jwks_with_nan_is_not_valid_json(tenant: LocalTenant) -> None:
    body = json.dumps({"keys": tenant.jwks()["keys"], "x": float("nan")})
    tenant.inject_fault("jwks", status=200, body=body.encode(), times=None)

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(tenant.mint())


def _discovery_with(tenant: LocalTenant, member: str) -> bytes:
    """The tenant's real discovery document with one more member, written as raw JSON text."""
    text = json.dumps(tenant.discovery_document())
    return f"{text[:-1]}, {member}}}".encode()


NON_FINITE_DISCOVERY = {
    "a NaN member": '"x_max_age": NaN',
    "an Infinity member": '"x_max_age": Infinity',
    "a -Infinity member": '"x_max_age": -Infinity',
    "1e400 (infinity in Python)": '"x_max_age": 1e400',
    "-1e400": '"x_max_age": -1e400',
    "NaN in a list": '"x_numbers": [1, 2, NaN]',
    "1e400 in a nested object": '"x_limits": {"max_age": 1e400}',
}


@pytest.mark.parametrize("member", NON_FINITE_DISCOVERY.values(), ids=NON_FINITE_DISCOVERY.keys())
def test_a_discovery_document_with_a_non_finite_number_is_refused(
    tenant: LocalTenant, clock: Clock, caplog: pytest.LogCaptureFixture, member: str
) -> None:
    """Python's own parser would read these (NaN, infinity); the document is refused whole and
    never cached, and the tenant counts as unavailable until it serves a valid one."""
    tenant.inject_fault("discovery", status=200, body=_discovery_with(tenant, member), times=None)
    caplog.set_level(logging.WARNING, logger="django_auth0_obo")

    with pytest.raises(TenantUnavailable):
        tokens.verify_access_token(tenant.mint())

    assert fetches(tenant) == (1, 0)  # refused before its jwks_uri was ever followed
    assert "The discovery document from" in caplog.text
    assert "is not valid JSON" in caplog.text
    assert keys._shared_get(tenant.issuer) is None  # nothing cached for other workers either
    tenant.clear_faults()
    clock.advance(31)  # past the back-off
    assert tokens.verify_access_token(tenant.mint())["iss"] == tenant.issuer


@pytest.mark.urls("tests.bearer_urls")
def test_a_discovery_document_with_1e400_answers_503(tenant: LocalTenant, api_client: Any) -> None:
    member = NON_FINITE_DISCOVERY["1e400 (infinity in Python)"]
    tenant.inject_fault("discovery", status=200, body=_discovery_with(tenant, member), times=None)

    response = api_client.get("/claims", HTTP_AUTHORIZATION=f"Bearer {tenant.mint()}")

    assert response.status_code == 503
    assert response.json() == {"detail": TenantUnavailable.default_description}
    assert tenant.count("jwks") == 0


def _nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_jwks_nested_as_deep_as_json_allows_is_never_a_crash(
    tenant: LocalTenant, settings: Any
) -> None:
    """A JWKS carrying an unused member nested almost as deep as the JSON parser allows parses,
    then failed to serialise for the key set's fingerprint a few frames deeper (the refetch for
    an unknown kid): a RecursionError, a 500. Whatever the depth, a tenant's document gets a
    verdict (its keys, or 503), never that."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "JWKS_REFETCH_COOLDOWN": 0}
    new_kid = tenant.add_key()
    published = tenant.jwks()["keys"]
    token = tenant.mint(kid=new_kid)
    outcomes = set()
    for depth in range(1000, 900, -1):
        keys.forget_issuer(tenant.issuer)
        tokens.clear_memo()
        tenant.retire_key(new_kid)
        tokens.verify_access_token(tenant.mint(sub="warm"))  # keys without new_kid
        tenant.publish_key(new_kid)
        tenant.inject_fault(
            "jwks", status=200, body={"keys": published, "x": _nested_list(depth)}, times=1
        )
        try:
            tokens.verify_access_token(token)  # unknown kid: the refetch gets that document
            outcomes.add("verified")
        except (InvalidToken, TenantUnavailable) as error:
            outcomes.add(type(error).__name__)
        except RecursionError:
            pytest.fail(f"RecursionError escaped at depth {depth}")
    assert "verified" in outcomes  # the shallower documents were used as the keys they are

"""``verify`` / ``averify``: the framework-free header → ``VerifiedToken`` path.

Same pipeline as ``Auth0Authentication`` (so the same errors and caches); errors carry the
``WWW-Authenticate`` value to send. ``averify`` must never block the event loop: the warm path
finishes without yielding, a cold key fetch runs while other coroutines keep running.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import django_auth0_obo
from django_auth0_obo import keys, tokens
from django_auth0_obo.exceptions import AuthenticationError, TenantUnavailable
from django_auth0_obo.testing import DPoPKey, LocalTenant
from django_auth0_obo.verified import VerifiedToken

URL = "https://api.example.com/mcp"


def test_verify_accepts_a_bearer_token(auth0_tenant: LocalTenant) -> None:
    token = auth0_tenant.mint(scope="calendar:read")
    verified = django_auth0_obo.verify(f"Bearer {token}", method="GET", url=URL)
    assert isinstance(verified, VerifiedToken)
    assert verified.scheme == "Bearer"
    assert verified.scopes == {"calendar:read"}


def test_verify_accepts_a_dpop_token_with_its_proof(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("POST", URL, token)
    verified = django_auth0_obo.verify(f"DPoP {token}", method="post", url=URL, dpop=proof)
    assert verified.scheme == "DPoP"
    assert verified.jkt == dpop_key.jkt


def _bad_cases(tenant: LocalTenant, key: DPoPKey) -> list[tuple[str, dict[str, Any], str, int]]:
    bound = tenant.mint(cnf_jkt=key.jkt)
    return [
        # (why, kwargs, error code, status)
        ("no header at all", {"authorization": None}, "invalid_token", 401),
        ("another scheme", {"authorization": "Basic dXNlcjpwdw=="}, "invalid_token", 401),
        ("empty Bearer", {"authorization": "Bearer "}, "invalid_request", 400),
        ("not a b64token", {"authorization": "Bearer a b"}, "invalid_request", 400),
        ("garbage token", {"authorization": "Bearer abc.def.ghi"}, "invalid_token", 401),
        (
            "another API's token",
            {"authorization": f"Bearer {tenant.mint(audience='https://other.example')}"},
            "invalid_token",
            401,
        ),
        (
            "audience narrowed away",
            {"authorization": f"Bearer {tenant.mint()}", "audience": "https://narrow.example"},
            "invalid_token",
            401,
        ),
        ("bound token as Bearer", {"authorization": f"Bearer {bound}"}, "invalid_token", 401),
        ("DPoP without proof", {"authorization": f"DPoP {bound}"}, "invalid_request", 400),
        (
            "proof for another URL",
            {
                "authorization": f"DPoP {bound}",
                "dpop": key.proof("GET", "https://elsewhere.example/", bound),
            },
            "invalid_dpop_proof",
            401,
        ),
    ]


def test_verify_refuses_bad_credentials_with_the_challenge_to_send(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey
) -> None:
    for why, kwargs, code, status in _bad_cases(auth0_tenant, dpop_key):
        with pytest.raises(AuthenticationError) as caught:
            django_auth0_obo.verify(method="GET", url=URL, **kwargs)
        error = caught.value
        assert (error.error, error.status_code) == (code, status), why
        assert error.www_authenticate, why
        assert error.www_authenticate.startswith("Bearer realm="), why
        credential = (kwargs["authorization"] or "").partition(" ")[2]
        assert len(credential) < 4 or credential not in error.www_authenticate, why
        if kwargs["authorization"] is None or "Basic" in kwargs["authorization"]:
            assert "error=" not in error.www_authenticate, why
        else:
            assert f'error="{code}"' in error.www_authenticate, why


def test_challenges_name_the_metadata_and_the_scopes(auth0_tenant: LocalTenant, settings) -> None:
    settings.AUTH0_OBO = {
        **settings.AUTH0_OBO,
        "RESOURCE": "https://api.example.com/mcp",
        "AUDIENCE": ["https://api.example.com/mcp"],
        "SCOPES_SUPPORTED": ["calendar:read"],
    }
    with pytest.raises(AuthenticationError) as caught:
        django_auth0_obo.verify(None, method="GET", url=URL)
    header = caught.value.www_authenticate or ""
    assert 'scope="calendar:read"' in header
    assert (
        'resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp"'
        in header
    )


def test_verify_reports_an_unreachable_tenant(auth0_tenant: LocalTenant) -> None:
    token = auth0_tenant.mint()
    auth0_tenant.inject_fault("discovery", status=503, times=None)
    with pytest.raises(TenantUnavailable):
        django_auth0_obo.verify(f"Bearer {token}", method="GET", url=URL)


def test_averify_on_the_warm_path_finishes_without_yielding(auth0_tenant: LocalTenant) -> None:
    """Warm keys: the coroutine completes on its first step, so it cannot have used a thread."""
    token = auth0_tenant.mint()
    django_auth0_obo.verify(f"Bearer {token}", method="GET", url=URL)  # warm the keys
    tokens.clear_memo()  # the signature is really checked, inline
    coroutine = django_auth0_obo.averify(f"Bearer {token}", method="GET", url=URL)
    with pytest.raises(StopIteration) as finished:
        coroutine.send(None)
    assert finished.value.value.sub == "auth0|user123"


def test_averify_fetches_cold_keys_off_the_event_loop(auth0_tenant: LocalTenant) -> None:
    """While a slow tenant answers discovery, other coroutines on the loop keep running."""
    token = auth0_tenant.mint()
    keys.forget_issuer(auth0_tenant.issuer)
    auth0_tenant.inject_fault("discovery", status=None, delay=1.0)

    async def scenario() -> list[str]:
        seen: list[str] = []
        verifying = asyncio.create_task(
            django_auth0_obo.averify(f"Bearer {token}", method="GET", url=URL)
        )

        async def other_request() -> None:
            await asyncio.sleep(0.01)
            seen.append("other served while verifying" if not verifying.done() else "late")

        await asyncio.gather(verifying, other_request())
        seen.append(verifying.result().sub)
        return seen

    assert asyncio.run(scenario()) == ["other served while verifying", "auth0|user123"]
    assert auth0_tenant.count("discovery") == 1


def test_averify_raises_the_same_errors_as_verify(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey
) -> None:
    for why, kwargs, code, status in _bad_cases(auth0_tenant, dpop_key):
        with pytest.raises(AuthenticationError) as caught:
            asyncio.run(django_auth0_obo.averify(method="GET", url=URL, **kwargs))
        assert (caught.value.error, caught.value.status_code) == (code, status), why
        assert caught.value.www_authenticate, why


def test_averify_checks_dpop_proofs_and_refuses_replays(
    auth0_tenant: LocalTenant, dpop_key: DPoPKey
) -> None:
    token = auth0_tenant.mint(cnf_jkt=dpop_key.jkt)
    proof = dpop_key.proof("GET", URL, token)
    first = asyncio.run(
        django_auth0_obo.averify(f"DPoP {token}", method="GET", url=URL, dpop=proof)
    )
    assert first.jkt == dpop_key.jkt
    with pytest.raises(AuthenticationError) as caught:
        asyncio.run(django_auth0_obo.averify(f"DPoP {token}", method="GET", url=URL, dpop=proof))
    assert caught.value.error == "invalid_dpop_proof"


def _verify_in_a_loop(authorization: str | None, **kwargs: Any) -> VerifiedToken:
    return asyncio.run(django_auth0_obo.averify(authorization, **kwargs))


@pytest.mark.parametrize("entry", [django_auth0_obo.verify, _verify_in_a_loop])
@pytest.mark.parametrize("authorization", [None, "Bearer abc.def.ghi"])
def test_a_url_with_a_malformed_host_still_gets_the_refusal_not_a_value_error(
    auth0_tenant: LocalTenant, settings: Any, entry: Any, authorization: str | None
) -> None:
    """``urlsplit`` refuses ``api.example.com[``: the challenge then leaves out
    ``resource_metadata=`` (no origin to point at) instead of raising ValueError."""
    settings.AUTH0_OBO = {**settings.AUTH0_OBO, "RESOURCE": URL, "AUDIENCE": [URL]}
    with pytest.raises(AuthenticationError) as caught:
        entry(authorization, method="POST", url="https://api.example.com[/mcp")
    header = caught.value.www_authenticate or ""
    assert header.startswith("Bearer realm="), header
    assert "resource_metadata=" not in header

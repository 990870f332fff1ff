"""How much a request's token verification costs, against bare PyJWT and auth0-api-python.

Run ``python bench/verify.py`` from the repository root (or anywhere: it finds the project). It
configures Django itself (``testproject.settings``), starts the local tenant stand-in, points
``AUTH0_OBO`` at it and warms every cache, then measures in one run, on the same tokens:

* baseline — bare ``jwt.decode(token, preloaded_key, algorithms=["RS256"], audience, issuer)``;
* ``Auth0Authentication().authenticate(request)`` with a fresh Bearer token on every call;
* the same, repeating one token (the verified-token memo);
* a DPoP request (fresh token and fresh proof every call) against the "DPoP baseline": bare
  ``jwt.decode`` of the token plus bare ``jwt.decode`` of the proof with a preloaded key;
* auth0-api-python's ``ApiClient.verify_access_token`` (async, its own caches warmed).

Each figure is the minimum over several runs of many calls (timeit's advice), in µs per call.
Nothing is asserted: the table says whether the targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIENCE = "https://api.example.com"
PROOF_URL = "http://testserver/api/whoami"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    os.environ.setdefault("CACHE_URL", "locmemcache://")
    import django

    django.setup()


def _interleaved(runners: dict[str, Callable[[], int]], repeats: int) -> dict[str, float]:
    """Best (seconds / call) of each runner over ``repeats`` rounds.

    Runners take turns within each round, so a burst of load on a shared machine hits every
    measurement alike instead of skewing one ratio. A runner returns how many calls it made.
    """
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(repeats):
        for name, run in runners.items():
            started = time.perf_counter()
            calls = run()
            elapsed = time.perf_counter() - started
            best[name] = min(best[name], elapsed / calls)
    return best


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per run (default 400)")
    parser.add_argument("--repeats", type=int, default=5, help="runs; the best counts (5)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    calls, repeats = args.calls, args.repeats

    _setup_django()
    import jwt
    from django.test.utils import override_settings
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from django_auth0_obo import keys, tokens
    from django_auth0_obo.authentication import Auth0Authentication
    from django_auth0_obo.testing import DPoPKey, LocalTenant

    tenant = LocalTenant().start()
    os.environ["SSL_CERT_FILE"] = tenant.ca_bundle  # for auth0-api-python's httpx client
    override = override_settings(AUTH0_OBO=tenant.django_settings(audience=AUDIENCE, AUDIT="off"))
    override.enable()
    try:
        keys.prefetch()
        factory = APIRequestFactory()
        public_key = tenant.keys.signing_key.public_key
        issuer = tenant.issuer
        pool = calls * repeats

        def request(**headers: str) -> Request:
            return Request(factory.get("/api/whoami", **headers))

        print(f"Minting {pool} tokens, {pool} DPoP-bound tokens and their proofs...", flush=True)
        fresh = [tenant.mint(sub=f"auth0|user{i}", scope="read:data") for i in range(pool)]
        fresh_requests = [request(HTTP_AUTHORIZATION=f"Bearer {t}") for t in fresh]
        dpop_key = DPoPKey.generate("ES256")
        dpop_public = dpop_key.private_key.public_key()
        bound = [tenant.mint(sub=f"auth0|dpop{i}", cnf_jkt=dpop_key.jkt) for i in range(pool)]
        proofs = [dpop_key.proof("GET", PROOF_URL, access_token=t) for t in bound]
        dpop_requests = [
            request(HTTP_AUTHORIZATION=f"DPoP {t}", HTTP_DPOP=p)
            for t, p in zip(bound, proofs, strict=True)
        ]
        repeated_request = request(HTTP_AUTHORIZATION=f"Bearer {fresh[0]}")
        Auth0Authentication().authenticate(repeated_request)  # warm: memo holds fresh[0]

        def decode(token: str) -> dict[str, Any]:
            return jwt.decode(
                token, public_key, algorithms=["RS256"], audience=AUDIENCE, issuer=issuer
            )

        def decode_proof(proof: str) -> dict[str, Any]:
            return jwt.decode(proof, dpop_public, algorithms=["ES256"])

        # Sanity: every path accepts what it is given before we time it.
        decode(fresh[1])
        decode_proof(proofs[0])
        assert_ok = Auth0Authentication().authenticate
        if assert_ok(request(HTTP_AUTHORIZATION=f"Bearer {fresh[1]}")) is None:
            raise SystemExit("our authentication refused a fresh token")
        tokens.clear_memo()

        def over(items: Sequence[Any], fn: Callable[[Any], Any]) -> Callable[[], int]:
            batches = iter(_chunks(items, calls))

            def run() -> int:
                batch = next(batches)
                for item in batch:
                    fn(item)
                return len(batch)

            return run

        def authenticate(req: Request) -> None:
            if Auth0Authentication().authenticate(req) is None:
                raise SystemExit("refused")

        runners: dict[str, Callable[[], int]] = {
            "baseline": over(fresh, decode),
            "fresh": over(fresh_requests, authenticate),
            "repeated": lambda: [authenticate(repeated_request) for _ in range(calls)] and calls,
            "dpop_baseline": over(
                list(zip(bound, proofs, strict=True)),
                lambda pair: (decode(pair[0]), decode_proof(pair[1])),
            ),
            "dpop": over(dpop_requests, authenticate),
        }
        auth0 = _auth0_api_python_runner(tenant, fresh, calls)
        if auth0 is not None:
            runners["auth0"] = auth0
        results = _interleaved(runners, repeats)
    finally:
        override.disable()
        tenant.stop()

    _print_table(results)
    return 0


def _auth0_api_python_runner(
    tenant: Any, pool: Sequence[str], calls: int
) -> Callable[[], int] | None:
    """auth0-api-python's verify_access_token over the same tokens, its caches warmed first."""
    try:
        with warnings.catch_warnings():  # authlib's own deprecation notice, not ours to fix
            warnings.simplefilter("ignore")
            from auth0_api_python import ApiClient, ApiClientOptions
    except ImportError:
        return None
    client = ApiClient(ApiClientOptions(domain=tenant.domain, audience=AUDIENCE))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(client.verify_access_token(access_token=pool[0]))
    batches = iter(_chunks(pool, calls))

    async def verify_batch(batch: Sequence[str]) -> None:
        for token in batch:
            await client.verify_access_token(access_token=token)

    def run() -> int:
        batch = next(batches)
        loop.run_until_complete(verify_batch(batch))
        return len(batch)

    return run


def _print_table(results: dict[str, float]) -> None:
    import django
    import jwt

    try:
        from importlib.metadata import version

        auth0_version = version("auth0-api-python")
    except Exception:  # the package is optional (bench extra)
        auth0_version = "not installed"
    base, dpop_base = results["baseline"], results["dpop_baseline"]
    rows = [
        ("bare jwt.decode, preloaded key (baseline)", base, base, ""),
        ("Auth0Authentication, fresh Bearer token", results["fresh"], base, "<= 1.0x"),
        ("Auth0Authentication, same token again", results["repeated"], base, "<= 0.3x"),
        ("bare jwt.decode of token + proof (DPoP baseline)", dpop_base, dpop_base, ""),
        ("Auth0Authentication, DPoP (fresh token + proof)", results["dpop"], dpop_base, "<= 1.3x"),
    ]
    if "auth0" in results:
        rows.append(("auth0-api-python verify_access_token", results["auth0"], base, ""))
    print()
    print(
        f"Python {platform.python_version()}, PyJWT {jwt.__version__}, "
        f"Django {django.get_version()}, auth0-api-python {auth0_version}"
    )
    print(f"{'measurement':<50} {'us/call':>9} {'ratio':>7}  target")
    for name, value, reference, target in rows:
        ratio = value / reference
        met = ""
        if target:
            met = "met" if ratio <= float(target.split()[1].rstrip("x")) else "MISSED"
        print(f"{name:<50} {value * 1e6:>9.1f} {ratio:>6.2f}x  {target} {met}".rstrip())
    if "auth0" in results:
        speedup = results["auth0"] / results["fresh"]
        verdict = "met" if speedup >= 2 else "MISSED"
        label = "auth0-api-python time / ours (fresh Bearer)"
        print(f"{label:<50} {'':>9} {speedup:>6.2f}x  >= 2x {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())

"""What ``averify`` costs over ``verify`` on the warm path (keys in memory): target at most 1.1x.

Run it from the repository root: ``python bench/async_verify.py`` (or ``make bench``).
It starts the local tenant stand-in, warms the keys, then times, interleaved:

* ``verify(header, ...)`` over fresh Bearer tokens (signature checked on every call);
* ``await averify(header, ...)`` over other fresh tokens, awaited in one coroutine;
* the same two on one repeated token (the verified-token memo answers);
* DPoP: a fresh token and proof per call, both ways (local-memory replay cache).

Each figure is the best over several runs, in µs per call; the ratio is averify / verify.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIENCE = "https://api.example.com"
URL = "https://api.example.com/mcp"
TARGET = 1.1


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per run (default 400)")
    parser.add_argument("--repeats", type=int, default=7, help="runs; the best counts (7)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    calls, repeats = args.calls, args.repeats

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    os.environ["CACHE_URL"] = "locmemcache://"
    import django

    django.setup()
    from django.test.utils import override_settings

    from django_auth0_obo import keys
    from django_auth0_obo.testing import DPoPKey, LocalTenant
    from django_auth0_obo.verification import averify, verify

    tenant = LocalTenant().start()
    override = override_settings(AUTH0_OBO=tenant.django_settings(audience=AUDIENCE, AUDIT="off"))
    override.enable()
    loop = asyncio.new_event_loop()
    try:
        keys.prefetch()
        pool = calls * repeats
        print(f"Minting {4 * pool} tokens and {2 * pool} DPoP proofs...", flush=True)
        sync_tokens = [f"Bearer {tenant.mint(sub=f'auth0|s{i}')}" for i in range(pool)]
        async_tokens = [f"Bearer {tenant.mint(sub=f'auth0|a{i}')}" for i in range(pool)]
        key = DPoPKey.generate("ES256")

        def dpop_pair(i: int, prefix: str) -> tuple[str, str]:
            token = tenant.mint(sub=f"auth0|{prefix}{i}", cnf_jkt=key.jkt)
            return f"DPoP {token}", key.proof("GET", URL, token)

        sync_dpop = [dpop_pair(i, "ds") for i in range(pool)]
        async_dpop = [dpop_pair(i, "da") for i in range(pool)]
        repeated = sync_tokens[0]
        verify(repeated, method="GET", url=URL)

        def sync_run(items: Sequence[Any], call: Callable[[Any], Any]) -> Callable[[], int]:
            batches = iter(_chunks(items, calls))

            def run() -> int:
                batch = next(batches)
                for item in batch:
                    call(item)
                return len(batch)

            return run

        def async_run(items: Sequence[Any], call: Callable[[Any], Any]) -> Callable[[], int]:
            batches = iter(_chunks(items, calls))

            async def each(batch: Sequence[Any]) -> None:
                for item in batch:
                    await call(item)

            def run() -> int:
                batch = next(batches)
                loop.run_until_complete(each(batch))
                return len(batch)

            return run

        runners = {
            "verify fresh": sync_run(sync_tokens, lambda h: verify(h, method="GET", url=URL)),
            "averify fresh": async_run(async_tokens, lambda h: averify(h, method="GET", url=URL)),
            "verify repeated": sync_run(
                [repeated] * pool, lambda h: verify(h, method="GET", url=URL)
            ),
            "averify repeated": async_run(
                [repeated] * pool, lambda h: averify(h, method="GET", url=URL)
            ),
            "verify dpop": sync_run(
                sync_dpop, lambda p: verify(p[0], method="GET", url=URL, dpop=p[1])
            ),
            "averify dpop": async_run(
                async_dpop, lambda p: averify(p[0], method="GET", url=URL, dpop=p[1])
            ),
        }
        best = _interleaved(runners, repeats)
    finally:
        loop.close()
        override.disable()
        tenant.stop()

    print(f"\n{'path':<18}{'verify µs':>12}{'averify µs':>12}{'ratio':>8}  target <= {TARGET}x")
    worst = 0.0
    for case in ("fresh", "repeated", "dpop"):
        sync_us = best[f"verify {case}"] * 1e6
        async_us = best[f"averify {case}"] * 1e6
        ratio = async_us / sync_us
        worst = max(worst, ratio)
        print(f"{case:<18}{sync_us:>12.1f}{async_us:>12.1f}{ratio:>8.3f}")
    print(f"\nworst ratio {worst:.3f}: {'MET' if worst <= TARGET else 'NOT MET'}")
    return 0


def _interleaved(runners: dict[str, Callable[[], int]], repeats: int) -> dict[str, float]:
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(repeats):
        for name, run in runners.items():
            started = time.perf_counter()
            count = run()
            best[name] = min(best[name], (time.perf_counter() - started) / count)
    return best


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


if __name__ == "__main__":
    raise SystemExit(main())

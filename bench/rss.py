"""Worker memory over many distinct tokens: gunicorn's RSS sampled while 100,000 tokens arrive.

Every per-process structure a token touches (the verified-token memo, the key LRU, the DPoP and
URL memos) is bounded, so a worker's resident size should rise while those fill and then stay
flat however many distinct tokens it verifies. This script shows it: one gunicorn worker
(``gthread``, keep-alive) on the example project (``bench.loadsettings``, default ``AUTH0_OBO``,
PostgreSQL and Redis as in ``make loadtest``) is sent ``--tokens`` distinct real tokens (each
signed by the stand-in tenant, minted as they are sent so the client stays small), and the
worker's RSS is printed every ``--every`` requests, with the growth over the second half (the
part after the memos are full). Nothing is asserted.

Run ``python bench/rss.py`` (``--tokens 100000 --every 10000`` by default; minting dominates:
allow a few minutes). ``DATABASE_URL`` / ``CACHE_URL`` as for ``bench/loadtest.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadtest import MCP_API, Server, drive, prepare_database, server_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000, help="distinct tokens to send")
    parser.add_argument("--every", type=int, default=10_000, help="sample RSS every N requests")
    parser.add_argument("--connections", type=int, default=4, help="concurrent client threads")
    args = parser.parse_args()

    from django_auth0_obo.testing import LocalTenant

    with LocalTenant() as tenant:
        env = server_env(tenant)
        env["BENCH_CACHE_PREFIX"] = f"rss-{os.getpid()}-{int(time.time())}"
        prepare_database(env)
        server = Server(env, workers=1, threads=4)
        samples: list[tuple[int, float]] = [(0, sum(server.worker_rss_mb()))]
        sent = 0
        errors = 0
        lock = threading.Lock()

        def tokens(count: int) -> Iterator[dict[str, str]]:
            nonlocal sent
            for _ in range(count):
                with lock:
                    sent += 1
                    number = sent
                token = tenant.mint(sub=f"auth0|rss-{number}", audience=MCP_API)
                yield {"Authorization": f"Bearer {token}"}

        try:
            while sent < args.tokens:
                batch = tokens(min(args.every, args.tokens - sent))
                result = drive(
                    server.port, "/bench/me", lambda b=batch: next(b), 1e9, args.connections
                )
                errors += result.errors
                samples.append((sent, sum(server.worker_rss_mb())))
                print(f"{sent:>8} tokens  worker RSS {samples[-1][1]:7.1f} MB", flush=True)
        finally:
            server.stop()

    half = samples[len(samples) // 2]
    growth = samples[-1][1] - half[1]
    print(
        f"\n{sent} distinct tokens, {errors} errors; RSS {samples[0][1]:.1f} MB at start, "
        f"{half[1]:.1f} MB after {half[0]}, {samples[-1][1]:.1f} MB at the end "
        f"(growth over the second half: {growth:+.1f} MB)"
    )


if __name__ == "__main__":
    main()

"""``make loadtest``: the example project under gunicorn, PostgreSQL and Redis, driven over HTTP.

What runs:

- a local stand-in tenant (real HTTPS, in this process) that issues the tokens and answers the
  exchanges;
- gunicorn (``gthread`` workers, keep-alive) serving ``bench.loadsettings`` — the example project
  with the default ``AUTH0_OBO`` settings (buffered ``AUDIT="delegated"``, token memo on), DEBUG
  off, persistent connections — pinned to CPU 0 when the machine has more than one;
- a load generator in this process (threads, one keep-alive ``http.client`` connection each),
  pinned to CPU 1.

Each scenario runs ``--seconds`` (default 10) in all, after a one-second warm-up, in
``--rounds`` turns taken in rotation with the other scenarios (so load from elsewhere on the
machine falls on every scenario alike). Then one table is printed:
requests/s, p50 and p99 latency, errors and the ratio to the ceiling (the same server, no
authentication), followed by the upstream exchange calls the tenant saw and the audit rows the
workers wrote once gunicorn was stopped gracefully. Numbers depend on the machine and on what else
runs on it; compare the ratios of one run.

Environment: ``DATABASE_URL`` (a PostgreSQL database, created if missing; its two app tables are
emptied first), ``CACHE_URL`` (Redis), both with local defaults.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loadtest")
CACHE_URL = os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/0")
MCP_API = "https://mcp.example.com"
Headers = dict[str, str]


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: Jiffies the server's core spent busy, and in all, while this scenario ran.
    busy: int = 0
    jiffies: int = 0
    #: Requests/s in each round, for the paired per-round ratios.
    round_rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def server_busy(self) -> float:
        """The share of the server core's time spent working: near 1.0 the scenario is bound by
        the server's CPU; well below, by waiting (Redis, the database, the load generator)."""
        return self.busy / self.jiffies if self.jiffies else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3 if ordered else 0.0


def server_env(tenant: Any) -> dict[str, str]:
    """The environment gunicorn serves ``bench.loadsettings`` with, against ``tenant``."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.loadsettings",
        "DATABASE_URL": DATABASE_URL,
        "CACHE_URL": CACHE_URL,
        "AUTH0_DOMAIN": tenant.domain,
        "AUTH0_AUDIENCE": MCP_API,
        "AUTH0_CLIENT_ID": tenant.client_id,
        "AUTH0_CLIENT_SECRET": tenant.client_secret,
        "AUTH0_TLS_CA_BUNDLE": tenant.ca_bundle,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def server_cpu() -> int | None:
    """The core gunicorn is pinned to (None: not pinned, the whole machine is counted)."""
    return 0 if (os.cpu_count() or 1) > 1 else None


def cpu_jiffies(cpu: int | None) -> tuple[int, int]:
    """(busy, total) jiffies of ``cpu`` (or of all CPUs) since boot, from ``/proc/stat``."""
    label = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            fields = line.split()
            if fields[0] == label:
                values = [int(v) for v in fields[1:9]]  # user .. steal
                idle = values[3] + values[4]  # idle + iowait
                return sum(values) - idle, sum(values)
    except OSError:
        pass
    return 0, 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_database(env: dict[str, str]) -> None:
    """Create the database if needed, migrate, and empty the app's tables."""
    import psycopg
    from psycopg import sql

    info = psycopg.conninfo.conninfo_to_dict(DATABASE_URL.replace("postgres://", "postgresql://"))
    name = str(info.pop("dbname"))
    server = psycopg.conninfo.make_conninfo(**{**info, "dbname": "postgres"})
    with psycopg.connect(server, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True)
    database_sql(
        "TRUNCATE django_auth0_obo_exchangedtoken, django_auth0_obo_delegationevent", env=env
    )


def database_sql(statement: str, *, env: dict[str, str]) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://")) as conn:
        cursor = conn.execute(statement)
        return list(cursor.fetchall()) if cursor.description else []


class Server:
    """gunicorn on the example project; stopped with SIGTERM (a graceful stop)."""

    def __init__(self, env: dict[str, str], workers: int, threads: int) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "testproject.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--keep-alive",
            "60",
            "--log-level",
            "warning",
        ]
        cpu = server_cpu()
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        self.process = subprocess.Popen(command, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/bench/open")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def worker_rss_mb(self) -> list[float]:
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if not children:  # taskset execs gunicorn in place, so pid is the master
                return []
        except OSError:
            return []
        sizes = []
        for child in children:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def drive(
    port: int, path: str, headers: Callable[[], Headers], seconds: float, connections: int
) -> Result:
    """``connections`` threads send GET ``path`` for ``seconds``; each request's own headers."""
    result = Result(path)
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies: list[float] = []
        errors = 0
        while time.monotonic() < stop:
            try:
                with lock:
                    extra = headers()
            except StopIteration:
                break
            start = time.perf_counter()
            try:
                conn.request("GET", path, headers=extra)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1
        conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.errors += errors

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    busy_before, total_before = cpu_jiffies(server_cpu())
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - began
    busy_after, total_after = cpu_jiffies(server_cpu())
    result.busy, result.jiffies = busy_after - busy_before, total_after - total_before
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="per gunicorn worker")
    parser.add_argument("--connections", type=int, default=8, help="concurrent client threads")
    parser.add_argument(
        "--rounds", type=int, default=10, help="turns each scenario's time is cut in"
    )
    args = parser.parse_args()
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})

    from django_auth0_obo.testing import DPoPKey, LocalTenant

    with LocalTenant() as tenant:
        env = server_env(tenant)
        prepare_database(env)
        # Only this run's keys: a unique prefix on the shared Redis (never flushed).
        env["BENCH_CACHE_PREFIX"] = f"loadtest-{os.getpid()}-{int(time.time())}"

        budget = int(args.seconds * 800) + 1000  # distinct tokens/proofs: more than we can send
        print(f"minting {budget} tokens and {budget} DPoP proofs…", file=sys.stderr)
        same = tenant.mint(audience=MCP_API, scope="mcp:read")
        distinct = iter(
            [tenant.mint(sub=f"auth0|load-{i}", audience=MCP_API) for i in range(budget)]
        )
        key = DPoPKey.generate("ES256")
        bound = tenant.mint(sub="auth0|dpop-user", audience=MCP_API, cnf_jkt=key.jkt)

        server = Server(env, args.workers, args.threads)
        url = f"http://127.0.0.1:{server.port}/bench/me"
        proofs = iter([key.proof("GET", url, access_token=bound) for _ in range(budget)])

        def fixed(value: Headers) -> Callable[[], Headers]:
            return lambda: value

        def each(tokens: Iterator[str], scheme: str = "Bearer") -> Callable[[], Headers]:
            return lambda: {"Authorization": f"{scheme} {next(tokens)}"}

        def dpop() -> Headers:
            return {"Authorization": f"DPoP {bound}", "DPoP": next(proofs)}

        bearer_same = fixed({"Authorization": f"Bearer {same}"})
        scenarios: list[tuple[str, str, Callable[[], Headers]]] = [
            ("ceiling (no auth)", "/bench/open", fixed({})),
            ("Bearer, same token", "/bench/me", bearer_same),
            ("Bearer, distinct tokens", "/bench/me", each(distinct)),
            ("DPoP, fresh proof", "/bench/me", dpop),
            ("OBO hit (defaults)", "/bench/obo", bearer_same),
        ]
        rss: list[tuple[str, list[float]]] = [("start", server.worker_rss_mb())]
        obo_requests = 0
        results = [Result(name) for name, _, _ in scenarios]
        try:
            for _, path, headers in scenarios:  # warm-up: connections, memos, the one exchange
                warm = drive(server.port, path, headers, 1.0, args.connections)
                if path == "/bench/obo":
                    obo_requests += len(warm.latencies) + warm.errors
            # Scenarios take turns in short rounds, so load from elsewhere on the machine
            # falls on all of them alike and the ratios stay comparable.
            for _ in range(args.rounds):
                for result, (_, path, headers) in zip(results, scenarios, strict=True):
                    part = drive(
                        server.port, path, headers, args.seconds / args.rounds, args.connections
                    )
                    result.seconds += part.seconds
                    result.latencies += part.latencies
                    result.errors += part.errors
                    result.busy += part.busy
                    result.jiffies += part.jiffies
                    result.round_rates.append(part.rate)
                    if path == "/bench/obo":
                        obo_requests += len(part.latencies) + part.errors
            rss.append(("end", server.worker_rss_mb()))
        finally:
            server.stop()
        upstream = tenant.count("token")

    rows = database_sql(
        "SELECT kind, cache_hit, count(*), coalesce(sum(count), 0) "
        "FROM django_auth0_obo_delegationevent GROUP BY kind, cache_hit ORDER BY kind, cache_hit",
        env=env,
    )
    report(results, upstream, rows, obo_requests, rss, args)


def paired_ratio(result: Result, baseline: Result) -> tuple[float, float, float, float]:
    """The median of ``result``'s rate ÷ ``baseline``'s over the rounds (each pair ran seconds
    apart, so a burst of load elsewhere on the machine moves one pair, not the median), the
    lowest and highest of those, and the ratio of the whole run's rates."""
    pairs = [r / b for r, b in zip(result.round_rates, baseline.round_rates, strict=True) if b]
    whole = result.rate / (baseline.rate or 1.0)
    if not pairs:
        return 0.0, 0.0, 0.0, whole
    return statistics.median(pairs), min(pairs), max(pairs), whole


def report(
    results: list[Result],
    upstream: int,
    rows: list[tuple[Any, ...]],
    obo_requests: int,
    rss: list[tuple[str, list[float]]],
    args: argparse.Namespace,
) -> None:
    ceiling = results[0].rate or 1.0
    print(
        f"\ngunicorn gthread {args.workers}x{args.threads}, {args.connections} keep-alive "
        f"connections, {args.seconds:.0f} s per scenario, PostgreSQL + Redis, default AUTH0_OBO\n"
    )
    columns = ("req/s", "p50 ms", "p99 ms", "errors", "x ceil", "srv cpu")
    header = f"{'scenario':<26} " + " ".join(f"{c:>8}" for c in columns)
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<26} {r.rate:>8.0f} {r.percentile(0.5):>8.2f} {r.percentile(0.99):>8.2f} "
            f"{r.errors:>8} {r.rate / ceiling:>8.2f} {r.server_busy:>8.0%}"
        )
    by = {r.name: r for r in results}
    print()
    print("ratio: the median of the rounds' own ratios (their range; the whole run's ratio)")
    for label, name, baseline, target in (
        (
            "OBO hit ÷ Bearer same token (same view without the exchange)",
            "OBO hit (defaults)",
            "Bearer, same token",
            0.7,
        ),
        ("DPoP ÷ Bearer distinct tokens", "DPoP, fresh proof", "Bearer, distinct tokens", 0.75),
    ):
        median, low, high, whole = paired_ratio(by[name], by[baseline])
        spread = f"({low:.2f} to {high:.2f}; {whole:.2f})"
        print(f"{label + ':':<63}{median:.2f}  {spread}  target ≥ {target}")
    print(f"upstream exchange calls: {upstream}  (target: 1)")
    events = sum(int(r[3]) for r in rows if r[0] == "exchange")
    written = sum(int(r[2]) for r in rows)
    print(
        f"audit after a graceful stop: {written} rows; exchange events accounted "
        f"{events} of {obo_requests} OBO requests; rows per OBO request "
        f"{written / max(1, obo_requests):.4f} (target ≤ 0.2 INSERT per request)"
    )
    for kind, cache_hit, count, total in rows:
        print(f"   kind={kind} cache_hit={cache_hit}: {count} rows standing for {total} events")
    sizes = "; ".join(f"{name} {'/'.join(f'{mb:.0f}' for mb in mbs)}" for name, mbs in rss if mbs)
    print(f"worker RSS (MB per worker): {sizes}")


if __name__ == "__main__":
    main()

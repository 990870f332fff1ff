"""The demo: a user's token travels MCP server → on-behalf-of exchange → calendar API, for real.

Everything runs on this machine over real sockets: the local tenant stand-in (HTTPS, real keys,
real token endpoint) in this process, and the example project served by Django on a free port
with SQLite. The script prints what each hop verified, then where to see the audit trail.

    python scripts/demo.py            # keeps serving the admin until Ctrl-C when run in a terminal
    python scripts/demo.py --once     # runs the scenario and exits (used by the tests)
    python scripts/demo.py --once --keep-db demo.sqlite3   # and keeps its database (audit rows)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from django_auth0_obo.testing import (  # noqa: E402
    CALENDAR_API,
    DEFAULT_CLIENT_ID,
    MCP_API,
    DPoPKey,
    LocalTenant,
)

ADMIN_USER = "admin"
ROGUE_CLIENT = "rogue-agent"
MCP_SERVER_CLIENT = "calendar-mcp-server"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def show(title: str, response: requests.Response) -> Any:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:200]
    print(f"\n── {title}")
    print(f"   HTTP {response.status_code}")
    challenge = response.headers.get("WWW-Authenticate")
    if challenge:
        print(f"   WWW-Authenticate: {challenge}")
    for line in json.dumps(body, indent=2).splitlines():
        print(f"   {line}")
    return body


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    subprocess.run(
        [*manage, "createsuperuser", "--noinput", "--username", ADMIN_USER, "--email", "a@b.c"],
        env=env,
        check=False,
        capture_output=True,
    )
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metadata = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource"
    return wait_until_up(server, metadata, "The Django server")


def wait_until_up(server: subprocess.Popen[bytes], url: str, name: str) -> subprocess.Popen[bytes]:
    """Return ``server`` once ``url`` answers; stop it and exit when it does not within 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return server
        except requests.ConnectionError:
            if server.poll() is not None:
                raise SystemExit(f"{name} did not start.") from None
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"{name} did not answer within 30 s.")


def configure_mcp_server(tenant: LocalTenant, env: dict[str, str], url: str) -> dict[str, str]:
    """The MCP server's API and on-behalf-of client in the tenant, and its environment.

    Its resource is exactly the URL clients connect to; the tenant knows it as an API.
    """
    tenant.add_api(url, ["mcp:read", "mcp:write"])
    secret = secrets.token_urlsafe(24)
    tenant.add_client(MCP_SERVER_CLIENT, secret, api=url, grants={CALENDAR_API: ["calendar:read"]})
    return {
        **env,
        "AUTH0_AUDIENCE": f"{url},{CALENDAR_API}",
        "AUTH0_RESOURCE": url,
        "AUTH0_SCOPES_SUPPORTED": "mcp:read",
        "AUTH0_CLIENT_ID": MCP_SERVER_CLIENT,
        "AUTH0_CLIENT_SECRET": secret,
    }


def start_mcp_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """uvicorn serving testproject.asgi: Django plus the MCP server (official SDK) at /mcp."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "testproject.asgi:application",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metadata = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
    return wait_until_up(server, metadata, "The MCP server")


def mcp_scenario(tenant: LocalTenant, url: str) -> int:
    """The official MCP Python client, with its own OAuth, calls a tool twice."""
    import asyncio

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from django_auth0_obo.testing.mcp_client import oauth_client

    print("\n6. An MCP client (official Python SDK) logs in by itself and calls a tool")
    print(f"   MCP server (official SDK, streamable HTTP, Auth0TokenVerifier): {url}")
    http, browser, storage = oauth_client(url, tenant.ca_bundle, client_name="demo MCP client")

    async def trace(response: httpx2.Response) -> None:
        request = response.request
        shown = str(request.url.copy_with(query=None))
        print(f"   {request.method:4} {shown}  → {response.status_code}")

    http.event_hooks["response"].append(trace)
    browser.on_response = trace
    tenant.oauth.user = "auth0|alice"  # whom /authorize signs in
    before = [r.grant_type for r in tenant.token_requests].count(EXCHANGE_GRANT)

    async def calls() -> list[Any]:
        answers = []
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            for number in (1, 2):
                result = await client.call_tool("upcoming_events", {})
                text = result.content[0].text if result.content else "{}"
                answer = json.loads(text) if not result.is_error else {"error": text}
                print(f"\n── tool upcoming_events, call {number}")
                for line in json.dumps(answer, indent=2).splitlines():
                    print(f"   {line}")
                answers.append(answer)
        return answers

    answers = asyncio.run(calls())
    exchanges = [r.grant_type for r in tenant.token_requests].count(EXCHANGE_GRANT) - before
    print(f"\n   token-endpoint exchanges for the two tool calls: {exchanges}")
    ok = (
        storage.tokens is not None
        and all(a.get("status") == 200 for a in answers)
        and all(a["calendar"]["acted_by"] == MCP_SERVER_CLIENT for a in answers)
        and exchanges == 1
        and len(browser.visited) == 1
    )
    print(f"   MCP path {'completed' if ok else 'FAILED'}.")
    return 0 if ok else 1


def rogue_exchange(tenant: LocalTenant, user_token: str, secret: str) -> str:
    """A second client, granted by the tenant but not allowed by the calendar API, exchanges."""
    answer = requests.post(
        tenant.token_endpoint,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": user_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": CALENDAR_API,
            "scope": "calendar:read",
            "client_id": ROGUE_CLIENT,
            "client_secret": secret,
        },
        verify=tenant.ca_bundle,
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def run(once: bool, keep_db: Path | None = None) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="auth0-obo-demo-"))
    password = secrets.token_urlsafe(12)
    with LocalTenant() as tenant:
        rogue_secret = secrets.token_urlsafe(24)
        tenant.add_client(
            ROGUE_CLIENT, rogue_secret, api=MCP_API, grants={CALENDAR_API: ["calendar:read"]}
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "DATABASE_URL": f"sqlite:///{workdir / 'demo.sqlite3'}",
            # A cache the server's processes share, as DPoP replay detection needs (W001), large
            # enough that no replay record is culled before its window ends (W005).
            "CACHE_URL": f"filecache://{workdir / 'cache'}?max_entries=1000000",
            "AUTH0_DOMAIN": tenant.domain,
            "AUTH0_AUDIENCE": f"{MCP_API},{CALENDAR_API}",
            "AUTH0_CLIENT_ID": tenant.client_id,
            "AUTH0_CLIENT_SECRET": tenant.client_secret,
            "AUTH0_TLS_CA_BUNDLE": tenant.ca_bundle,
            "DOWNSTREAM_CALENDAR_URL": base,
            "AUTH0_AUDIT_SYNC": "true",  # the rows are printed right after the requests
            "DJANGO_SUPERUSER_PASSWORD": password,
            "PYTHONPATH": str(ROOT),
        }
        print("django_auth0_obo demo")
        print(f"   stand-in tenant:  {tenant.issuer}  (real HTTPS, CA {tenant.ca_bundle})")
        print(f"   example project:  {base}  (SQLite at {workdir / 'demo.sqlite3'})")
        server = start_server(env, port)
        mcp_server = None
        try:
            status = scenario(tenant, base, rogue_secret)
            mcp_port = free_port()
            mcp_url = f"http://127.0.0.1:{mcp_port}/mcp"
            mcp_env = configure_mcp_server(tenant, env, mcp_url)
            mcp_server = start_mcp_server(mcp_env, mcp_port)
            status = mcp_scenario(tenant, mcp_url) or status
            print_audit_rows(env)
            print("\nThe audit trail in the admin (who acted for whom, allowed or denied):")
            print(f"   {base}/admin/django_auth0_obo/delegationevent/")
            print("The delegation overview (who acts for whom, on which API, day by day):")
            print(f"   {base}/admin/django_auth0_obo/delegationevent/overview/")
            print(f"   log in as {ADMIN_USER!r} with password {password!r}")
            if status == 0 and not once and sys.stdin.isatty():
                print("\nServing until Ctrl-C…")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
            return status
        finally:
            for process in (server, mcp_server):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=10)
            if keep_db is not None:
                copy_database(workdir / "demo.sqlite3", keep_db)


def copy_database(source: Path, target: Path) -> None:
    """Copy the demo's SQLite database (its audit rows) through SQLite's backup API, whole and
    consistent whatever its journal mode, so a test can read the rows the demo wrote."""
    target.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    print(f"\nThe demo's database (audit rows included) was copied to {target}")


def print_audit_rows(env: dict[str, str]) -> None:
    """Read the audit rows the requests wrote, through the project's own settings."""
    code = (
        "from django_auth0_obo.models import DelegationEvent as E\n"
        "for e in E.objects.order_by('created_at'):\n"
        "    chain = ' → '.join([e.subject, *reversed(e.delegation_chain)])\n"
        "    where = e.target_audience and f'→ {e.target_audience}' + "
        "(' (cache hit)' if e.cache_hit else ' (cache miss)') or f'{e.method} {e.path}'\n"
        "    print(f'   {e.kind:8} {e.outcome:7} {e.reason or \"-\":18} {chain:34} {where}')\n"
    )
    print("\nAudit rows written (kind, outcome, reason, who acted for whom, what):")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-v", "0", "-c", code], env=env
    )


def scenario(tenant: LocalTenant, base: str, rogue_secret: str) -> int:
    user = "auth0|alice"
    user_token = tenant.mint(
        sub=user, audience=MCP_API, scope="openid calendar:read", azp="client-app"
    )

    print("\n1. Alice's app calls the MCP server with a Bearer token")
    show(
        "GET /api/whoami (Bearer)",
        requests.get(
            f"{base}/api/whoami", headers={"Authorization": f"Bearer {user_token}"}, timeout=10
        ),
    )

    print("\n2. The same call with a DPoP-bound token and a proof (RFC 9449)")
    key = DPoPKey.generate("ES256")
    bound = tenant.mint(sub=user, audience=MCP_API, scope="calendar:read", cnf_jkt=key.jkt)
    url = f"{base}/api/whoami"
    proof = key.proof("GET", url, access_token=bound)
    headers = {"Authorization": f"DPoP {bound}", "DPoP": proof}
    show("GET /api/whoami (DPoP)", requests.get(url, headers=headers, timeout=10))
    replayed = requests.get(url, headers=headers, timeout=10)
    show("the same proof sent again: refused as a replay", replayed)

    print("\n3. The MCP server exchanges Alice's token on her behalf and calls the calendar API")
    before = tenant.count("token")
    first = show(
        "POST /mcp/calendar",
        requests.post(
            f"{base}/mcp/calendar", headers={"Authorization": f"Bearer {user_token}"}, timeout=20
        ),
    )
    second = show(
        "POST /mcp/calendar again (exchanged token served from the cache)",
        requests.post(
            f"{base}/mcp/calendar", headers={"Authorization": f"Bearer {user_token}"}, timeout=20
        ),
    )
    print(f"\n   token-endpoint calls for the two requests: {tenant.count('token') - before}")

    print("\n4. Another client, granted by the tenant but not allowed by the calendar API")
    rogue = rogue_exchange(tenant, user_token, rogue_secret)
    refused = requests.get(
        f"{base}/api/calendar/events", headers={"Authorization": f"Bearer {rogue}"}, timeout=10
    )
    show(f"GET /api/calendar/events acted by {ROGUE_CLIENT!r}", refused)

    print("\n5. An MCP client discovering how to authenticate (RFC 9728)")
    show(
        "GET /.well-known/oauth-protected-resource",
        requests.get(f"{base}/.well-known/oauth-protected-resource", timeout=10),
    )

    ok = (
        replayed.status_code == 401
        and refused.status_code == 403
        and isinstance(first, dict)
        and first.get("calendar_status") == 200
        and isinstance(second, dict)
        and (second.get("exchange") or {}).get("cache_hit") is True
    )
    print(f"\nDemo {'completed' if ok else 'FAILED'}: {DEFAULT_CLIENT_ID!r} acted for {user!r}.")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run the scenario and exit")
    parser.add_argument(
        "--keep-db",
        metavar="PATH",
        type=Path,
        help="when done, copy the demo's SQLite database (with its audit rows) to PATH",
    )
    args = parser.parse_args()
    return run(args.once, args.keep_db)


if __name__ == "__main__":
    raise SystemExit(main())

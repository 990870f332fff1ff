"""The demo: a user's token travels MCP server → on-behalf-of exchange → calendar API, for real.

Everything runs on this machine over real sockets: the local tenant stand-in (HTTPS, real keys,
real token endpoint) in this process, and the example project served by Django on a free port
with SQLite. The script prints what each hop verified, then where to see the audit trail.

    python scripts/demo.py            # keeps serving the admin until Ctrl-C when run in a terminal
    python scripts/demo.py --once     # runs the scenario and exits (used by the tests)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource", timeout=1)
            return server
        except requests.ConnectionError:
            if server.poll() is not None:
                raise SystemExit("The Django server did not start.") from None
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("The Django server did not answer within 30 s.")


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


def run(once: bool) -> int:
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
            # A cache the server's processes share, as DPoP replay detection needs (W001).
            "CACHE_URL": f"filecache://{workdir / 'cache'}",
            "AUTH0_DOMAIN": tenant.domain,
            "AUTH0_AUDIENCE": f"{MCP_API},{CALENDAR_API}",
            "AUTH0_CLIENT_ID": tenant.client_id,
            "AUTH0_CLIENT_SECRET": tenant.client_secret,
            "AUTH0_TLS_CA_BUNDLE": tenant.ca_bundle,
            "DOWNSTREAM_CALENDAR_URL": base,
            "DJANGO_SUPERUSER_PASSWORD": password,
            "PYTHONPATH": str(ROOT),
        }
        print("django_auth0_obo demo")
        print(f"   stand-in tenant:  {tenant.issuer}  (real HTTPS, CA {tenant.ca_bundle})")
        print(f"   example project:  {base}  (SQLite at {workdir / 'demo.sqlite3'})")
        server = start_server(env, port)
        try:
            status = scenario(tenant, base, rogue_secret)
            print_audit_rows(env)
            print("\nThe audit trail in the admin (who acted for whom, allowed or denied):")
            print(f"   {base}/admin/django_auth0_obo/delegationevent/")
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
            server.terminate()
            server.wait(timeout=10)


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
    return run(parser.parse_args().once)


if __name__ == "__main__":
    raise SystemExit(main())

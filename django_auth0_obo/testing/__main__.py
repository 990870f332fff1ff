"""``python -m django_auth0_obo.testing``: a local tenant for trying the app by hand.

Serving (the default) starts the stand-in on 127.0.0.1 and prints, in this order:

1. one line of JSON (domain, issuer, CA bundle, token endpoint, client credentials...) for
   launchers that read it;
2. the ``AUTH0_OBO`` settings to paste into the project, with a CA bundle at a **stable path**
   (``<state dir>/ca.pem``, rewritten at every start) and the same client secret every run, so
   the pasted settings keep working after a restart (the port is fixed too: 8443 by default);
3. a ready user access token and the ``curl`` command that uses it.

``--mint`` makes more tokens while it serves, from another terminal: the serving process keeps its
signing key in the state directory (mode 0600; it is a throwaway test key, never a real one), and
``--mint`` signs with it and prints the token alone, for ``$(...)``.

The state directory is ``$DJANGO_AUTH0_OBO_STATE`` or ``~/.cache/django-auth0-obo``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django_auth0_obo.testing.tenant import LocalTenant

DEFAULT_PORT = 8443
STATE_ENV = "DJANGO_AUTH0_OBO_STATE"


def state_dir() -> Path:
    """Where the stable CA copy, the client secret and the signing key of the running stand-in
    live between invocations."""
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "django-auth0-obo"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m django_auth0_obo.testing",
        description="Serve a local Auth0 tenant stand-in over HTTPS on 127.0.0.1, or (--mint) "
        "print a user access token signed by the running one.",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})"
    )
    parser.add_argument("--audience", help="audience of the tokens (default: your API's)")
    parser.add_argument("--client-secret", help="secret of mcp-server-client (default: stable)")
    parser.add_argument("--mint", action="store_true", help="print a token from the running one")
    parser.add_argument("--sub", default="auth0|alice", help="subject of the tokens")
    parser.add_argument("--scope", default="", help="space-separated scopes of the tokens")
    parser.add_argument("--act", help="actor client id, to mint a delegated token (`act.sub`)")
    parser.add_argument("--expires-in", type=int, default=3600, help="token lifetime, seconds")
    return parser.parse_args(argv)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _stable_secret(directory: Path, given: str | None) -> str:
    path = directory / "client-secret"
    if given:
        return given
    if path.is_file():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    _write_private(path, secret)
    return secret


def _save_signing_key(directory: Path, tenant: LocalTenant) -> None:
    from cryptography.hazmat.primitives import serialization

    key = tenant.keys.signing_key
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    state = {
        "issuer": tenant.issuer,
        "audience": tenant.default_audience,
        "kid": key.kid,
        "alg": key.alg,
        "private_key_pem": pem,
    }
    _write_private(directory / "signing-key.json", json.dumps(state))


def mint_from_state(
    directory: Path,
    *,
    sub: str,
    scope: str,
    audience: str | None = None,
    act: str | None = None,
    expires_in: int = 3600,
) -> str:
    """A user access token signed with the running stand-in's key (as ``LocalTenant.mint``)."""
    import jwt

    path = directory / "signing-key.json"
    if not path.is_file():
        raise SystemExit(f"No running stand-in found ({path} is missing): start one first.")
    state = json.loads(path.read_text())
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": state["issuer"],
        "sub": sub,
        "aud": audience or state["audience"],
        "iat": now,
        "exp": now + expires_in,
        "azp": act or "client-app",
    }
    if scope:
        claims["scope"] = scope
    if act:
        claims["act"] = {"sub": act}
    headers = {"typ": "JWT", "kid": state["kid"]}
    return jwt.encode(claims, state["private_key_pem"], algorithm=state["alg"], headers=headers)


def _settings_text(info: dict[str, Any]) -> str:
    return (
        "AUTH0_OBO = {\n"
        f'    "DOMAIN": "{info["domain"]}",\n'
        f'    "AUDIENCE": "{info["audience"]}",\n'
        f'    "CLIENT_ID": "{info["client_id"]}",\n'
        f'    "CLIENT_SECRET": "{info["client_secret"]}",\n'
        f'    "TLS_CA_BUNDLE": "{info["stable_ca_bundle"]}",\n'
        "}"
    )


def serve(args: argparse.Namespace) -> int:
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "port": args.port,
        "client_secret": _stable_secret(directory, args.client_secret),
    }
    if args.audience:
        options["default_audience"] = args.audience
    else:
        from django_auth0_obo.testing.config import MCP_API

        options["default_audience"] = MCP_API
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with LocalTenant(**options) as tenant:
        stable_ca = directory / "ca.pem"
        shutil.copyfile(tenant.ca_bundle, stable_ca)
        _save_signing_key(directory, tenant)
        info = {
            "domain": tenant.domain,
            "issuer": tenant.issuer,
            "ca_bundle": tenant.ca_bundle,
            "stable_ca_bundle": str(stable_ca),
            "token_endpoint": tenant.token_endpoint,
            "jwks_uri": tenant.jwks_uri,
            "audience": tenant.default_audience,
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        }
        token = tenant.mint(sub=args.sub, scope=args.scope or None, expires_in=args.expires_in)
        print(json.dumps(info), flush=True)
        print(
            f"\nLocal Auth0 tenant stand-in at {tenant.issuer} (Ctrl-C to stop).\n"
            f"\nPaste into your settings (the CA path and secret stay the same across runs):\n\n"
            f"{_settings_text(info)}\n"
            f"\nA user token ({args.sub}, audience {tenant.default_audience}, "
            f"{args.expires_in} s):\n\n{token}\n"
            f'\nTry it:  curl -H "Authorization: Bearer {token}" http://127.0.0.1:8000/your/api/\n'
            "More tokens:  python -m django_auth0_obo.testing --mint --sub 'auth0|bob' "
            '--scope "read:data"\n',
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        finally:
            (directory / "signing-key.json").unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.mint:
        token = mint_from_state(
            state_dir(),
            sub=args.sub,
            scope=args.scope,
            audience=args.audience,
            act=args.act,
            expires_in=args.expires_in,
        )
        print(token)
        return 0
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m django_auth0_obo.testing``: run a local tenant until killed (used by the demo).

The first line on stdout is JSON with the domain, issuer, CA bundle path, token endpoint and the
default OBO client's credentials, so a launcher can read it and configure the app.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from django_auth0_obo.testing.tenant import LocalTenant


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m django_auth0_obo.testing",
        description="Serve a local Auth0 tenant stand-in over HTTPS on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free)")
    parser.add_argument("--audience", help="default audience of minted tokens")
    parser.add_argument("--client-secret", help="secret of mcp-server-client (default: random)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    options: dict[str, Any] = {"port": args.port, "client_secret": args.client_secret}
    if args.audience:
        options["default_audience"] = args.audience
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with LocalTenant(**options) as tenant:
        info = {
            "domain": tenant.domain,
            "issuer": tenant.issuer,
            "ca_bundle": tenant.ca_bundle,
            "token_endpoint": tenant.token_endpoint,
            "jwks_uri": tenant.jwks_uri,
            "audience": tenant.default_audience,
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        }
        print(json.dumps(info), flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

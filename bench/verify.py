"""How much a request's token verification costs, against bare PyJWT and auth0-api-python.

Run ``python bench/verify.py`` from the repository root (or anywhere: it finds the project). It
configures Django itself (``testproject.settings``), starts the local tenant stand-in, points
``AUTH0_OBO`` at it and warms every cache, then measures in one run, on the same tokens:

* baseline — bare ``jwt.decode(token, preloaded_key, algorithms=["RS256"], audience, issuer)``;
* ``Auth0Authentication().authenticate(request)`` with a fresh Bearer token on every call;
* the same, repeating one token (the verified-token memo);
* a DPoP request (fresh token and fresh proof every call) against the "DPoP baseline": bare
  ``jwt.decode`` of the token plus bare ``jwt.decode`` of the proof with a preloaded key;
* auth0-api-python's ``ApiClient.verify_access_token`` (async, its own caches warmed);
* issue 8's DPoP target: one bound token with a fresh proof per call (the token memo answers,
  the proof and its replay record are new) against a fresh Bearer token per call — run with
  ``CACHE_URL=redis://127.0.0.1:6379/N`` to put the replay records on Redis (then also the
  floor: one ES256 check overlapped with one raw ``SET NX`` round trip on a plain socket);
* issue 8's Bearer target: the authentication's own cost, a DRF view with
  ``Auth0Authentication`` minus the same view without authentication (both through
  ``APIView.as_view()``), against one bare RSA-2048 signature check.

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


def _interleaved(
    runners: dict[str, Callable[[], int]],
    repeats: int,
    between: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Best (seconds / call) of each runner over ``repeats`` rounds.

    Runners take turns within each round, so a burst of load on a shared machine hits every
    measurement alike instead of skewing one ratio. A runner returns how many calls it made.
    ``between`` runs after each batch, untimed.
    """
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(repeats):
        for name, run in runners.items():
            started = time.perf_counter()
            calls = run()
            elapsed = time.perf_counter() - started
            best[name] = min(best[name], elapsed / calls)
            if between is not None:
                between()
    return best


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per run (default 400)")
    parser.add_argument("--repeats", type=int, default=5, help="runs; the best counts (5)")
    parser.add_argument(
        "--audit",
        choices=("off", "default"),
        default="off",
        help="AUDIT for the whole run: off (the default here), or the app's default; with "
        "'default' each view call is wrapped in Django's request_started/request_finished, as "
        "the request handler does, so the audit's per-request bookkeeping is settled as served",
    )
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
    audit = {"AUDIT": "off"} if args.audit == "off" else {}
    override = override_settings(AUTH0_OBO=tenant.django_settings(audience=AUDIENCE, **audit))
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
        one_bound = tenant.mint(sub="auth0|dpop-one", cnf_jkt=dpop_key.jkt)
        one_token_requests = [
            request(
                HTTP_AUTHORIZATION=f"DPoP {one_bound}",
                HTTP_DPOP=dpop_key.proof("GET", PROOF_URL, access_token=one_bound),
            )
            for _ in range(pool)
        ]
        view_one_token = [
            factory.get(
                "/api/whoami",
                HTTP_AUTHORIZATION=f"DPoP {one_bound}",
                HTTP_DPOP=dpop_key.proof("GET", PROOF_URL, access_token=one_bound),
            )
            for _ in range(pool)
        ]
        es256_inputs = [_signed_parts(p) for p in proofs]
        view_fresh = [tenant.mint(sub=f"auth0|view{i}", scope="read:data") for i in range(pool)]
        authed_view, open_view = _drf_views(served=args.audit == "default")
        view_requests = [
            factory.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {t}") for t in view_fresh
        ]
        open_requests = [factory.get("/api/whoami") for _ in range(pool)]
        rsa_inputs = [_signed_parts(t) for t in fresh]
        open_then_rsa = [(factory.get("/api/whoami"), parts) for parts in rsa_inputs]
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
        if (
            authed_view(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {fresh[1]}")).status_code
            != 200
        ):
            raise SystemExit("the authenticated view refused a fresh token")
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
            "dpop_one_token": over(one_token_requests, authenticate),
            "view_auth": over(view_requests, lambda r: _ok(authed_view(r))),
            "view_open": over(open_requests, lambda r: _ok(open_view(r))),
            "rsa_verify": over(rsa_inputs, lambda parts: _rsa_verify(public_key, *parts)),
            "es256_verify": over(es256_inputs, lambda parts: _es256_verify(dpop_public, *parts)),
            "view_dpop_one": over(view_one_token, lambda r: _ok(authed_view(r))),
            "view_open_rsa": over(
                open_then_rsa,
                lambda pair: (_ok(open_view(pair[0])), _rsa_verify(public_key, *pair[1])),
            ),
        }
        auth0 = _auth0_api_python_runner(tenant, fresh, calls)
        if auth0 is not None:
            runners["auth0"] = auth0
        redis_floor = _redis_floor_runner(es256_inputs, dpop_public, calls)
        if redis_floor is not None:
            runners["es256_redis_floor"] = redis_floor
        # Under the default AUDIT, calls of authenticate() outside a view leave their pending
        # audit records for the request's end: settle them between batches, untimed, as the
        # end of a request would, so they do not pile up over the run.
        results = _interleaved(
            runners, repeats, between=_request_end if args.audit != "off" else None
        )
    finally:
        override.disable()
        tenant.stop()

    _print_table(results, audit=args.audit)
    return 0


def _drf_views(*, served: bool = False) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The same small DRF view with ``Auth0Authentication`` + ``IsAuthenticated``, and without.

    ``served``: each call sends ``request_started`` and ``request_finished`` around the view, as
    Django's request handler does (the audit settles its per-request records on them)."""
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.renderers import JSONRenderer
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from django_auth0_obo.authentication import Auth0Authentication

    class Authed(APIView):
        authentication_classes = (Auth0Authentication,)
        permission_classes = (IsAuthenticated,)
        renderer_classes = (JSONRenderer,)

        def get(self, request: Any) -> Response:
            return Response({"ok": True})

    class Open(Authed):
        authentication_classes = ()
        permission_classes = ()

    authed, open_ = Authed.as_view(), Open.as_view()
    return (_served(authed), _served(open_)) if served else (authed, open_)


def _request_end() -> None:
    from django.core.signals import request_finished

    request_finished.send(sender=None)


def _served(view: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from django.core.signals import request_finished, request_started

    def call(request: Any) -> Any:
        request_started.send(sender=None, environ=request.META)
        try:
            return view(request)
        finally:
            request_finished.send(sender=None)

    return call


def _ok(response: Any) -> None:
    if response.status_code != 200:
        raise SystemExit(f"view answered {response.status_code}")


def _signed_parts(token: str) -> tuple[bytes, bytes]:
    """(signing input, signature) of a compact JWS, for the bare RSA check."""
    from django_auth0_obo import jose

    header, payload, signature = token.encode("ascii").split(b".")
    return header + b"." + payload, jose.b64url_decode(signature)


def _rsa_verify(public_key: Any, signing_input: bytes, signature: bytes) -> None:
    """One RS256 signature check with ``cryptography`` (raises when invalid)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())


def _es256_verify(public_key: Any, signing_input: bytes, signature: bytes) -> None:
    """One ES256 signature check with ``cryptography`` (raises when invalid): the floor of any
    DPoP proof check, whatever else it does."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public_key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))


def _redis_floor_runner(
    inputs: Sequence[tuple[bytes, bytes]], public_key: Any, calls: int
) -> Callable[[], int] | None:
    """When the replay records live on Redis: one ES256 check overlapped with one
    ``SET key 1 NX PX`` round trip on a plain blocking socket (command packed in advance, reply
    read after the signature, as ``replay.claim_proof`` does) — the least any DPoP check with a
    shared replay record can cost on this machine, whatever its code. None on other caches."""
    import socket
    from urllib.parse import urlsplit

    from django.conf import settings

    from django_auth0_obo.conf import obo_settings

    alias = obo_settings.CACHE_ALIAS
    if "redis" not in settings.CACHES[alias]["BACKEND"].lower():
        return None
    location = settings.CACHES[alias]["LOCATION"]
    url = urlsplit(location[0] if isinstance(location, list | tuple) else location)
    connection = socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    database = (url.path or "/0").strip("/") or "0"
    command = f"*2\r\n$6\r\nSELECT\r\n${len(database)}\r\n{database}\r\n".encode()
    connection.sendall(command)
    if connection.recv(64) != b"+OK\r\n":
        raise SystemExit("Redis refused SELECT")
    prefix = os.urandom(6).hex()
    keys = [f"bench:floor:{prefix}:{i:032d}".encode() for i in range(len(inputs))]
    commands = [
        b"*6\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n60000\r\n"
        % (len(key), key)
        for key in keys
    ]
    batches = iter(_chunks(list(zip(commands, inputs, strict=True)), calls))

    def run() -> int:
        batch = next(batches)
        for command, (signing_input, signature) in batch:
            connection.sendall(command)
            _es256_verify(public_key, signing_input, signature)
            if connection.recv(64) != b"+OK\r\n":
                raise SystemExit("a fresh SET NX was refused")
        return len(batch)

    return run


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


def _print_table(results: dict[str, float], *, audit: str = "off") -> None:
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
        f"Django {django.get_version()}, auth0-api-python {auth0_version}; AUDIT {audit}"
    )
    print(f"{'measurement':<50} {'us/call':>9} {'ratio':>7}  target")
    for name, value, reference, target in rows:
        ratio = value / reference
        met = ""
        if target:
            met = "met" if ratio <= float(target.split()[1].rstrip("x")) else "MISSED"
        print(f"{name:<50} {value * 1e6:>9.1f} {ratio:>6.2f}x  {target} {met}".rstrip())
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    dpop_one = results["fresh"] / results["dpop_one_token"]
    verdict = "met" if dpop_one >= 0.55 else "MISSED"
    print(
        f"{'DPoP one token, fresh proof (' + backend + ')':<50} "
        f"{results['dpop_one_token'] * 1e6:>9.1f}"
    )
    label = "throughput: DPoP one token / Bearer fresh"
    print(f"{label:<50} {'':>9} {dpop_one:>6.2f}x  >= 0.55x {verdict}")
    # Every DPoP request checks one ES256 signature, so no implementation can beat this ratio
    # on this machine: when it is under 0.55 the target above cannot be met here.
    es256 = results["es256_verify"]
    print(f"{'one ES256 verify (cryptography)':<50} {es256 * 1e6:>9.1f}")
    label = "  ceiling: Bearer fresh / one ES256 verify alone"
    print(f"{label:<50} {'':>9} {results['fresh'] / es256:>6.2f}x")
    if "es256_redis_floor" in results:
        # Any DPoP check with its replay record on Redis pays at least the signature and one
        # round trip: when this ratio is under 0.55, no code can meet that target here.
        floor = results["es256_redis_floor"]
        print(f"{'ES256 verify + raw SET NX round trip (socket)':<50} {floor * 1e6:>9.1f}")
        label = "  floor: Bearer fresh / that"
        print(f"{label:<50} {'':>9} {results['fresh'] / floor:>6.2f}x")
    per_request = results["view_auth"] / results["view_dpop_one"]
    label = "per request (DRF view): DPoP one token / Bearer"
    print(f"{label:<50} {results['view_dpop_one'] * 1e6:>9.1f} {per_request:>6.2f}x")
    own = results["view_auth"] - results["view_open"]
    rsa = results["rsa_verify"]
    print(
        f"{'DRF view + Auth0Authentication, fresh Bearer':<50} {results['view_auth'] * 1e6:>9.1f}"
    )
    print(f"{'DRF view without authentication':<50} {results['view_open'] * 1e6:>9.1f}")
    print(f"{'one RSA-2048 verify (cryptography)':<50} {rsa * 1e6:>9.1f}")
    verdict = "met" if own / rsa <= 3 else "MISSED"
    label = "authentication's own cost / RSA verify"
    print(f"{label:<50} {own * 1e6:>9.1f} {own / rsa:>6.2f}x  <= 3x {verdict}")
    # The own cost is measured between views, the RSA verify above in a tight loop; the same
    # verify between open-view requests shows what interleaving alone does to it.
    rsa_between = results["view_open_rsa"] - results["view_open"]
    label = "  one RSA-2048 verify between open-view requests"
    print(f"{label:<50} {rsa_between * 1e6:>9.1f}")
    label = "  own cost / that verify"
    print(f"{label:<50} {'':>9} {own / rsa_between:>6.2f}x")
    if "auth0" in results:
        speedup = results["auth0"] / results["fresh"]
        verdict = "met" if speedup >= 2 else "MISSED"
        label = "auth0-api-python time / ours (fresh Bearer)"
        print(f"{label:<50} {'':>9} {speedup:>6.2f}x  >= 2x {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())

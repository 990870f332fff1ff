"""``manage.py auth0_obo_check``: is this API ready to verify and exchange tokens?

Runs the system checks, then asks the key store (``keys.inspect_issuer``) to fetch each issuer's
discovery document and JWKS straight from the tenant (no cache, so it proves the tenant answers
now) and parse them exactly as verification does: it lists the keys the verifier will use and
those it skips, with why (a 1024-bit RSA key, ``use: enc``, an unsupported ``alg``...). ``--exchange
AUDIENCE`` reads an access token from stdin and performs a real on-behalf-of exchange, printing
the result's metadata and the new token's identifying claims — never a token. ``--tenant-config``
prints the tenant configuration the exchange needs, without contacting anything.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import jwt
from django.core import checks
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_auth0_obo import jose
from django_auth0_obo.conf import obo_settings
from django_auth0_obo.exceptions import Auth0OboError

if TYPE_CHECKING:
    from django_auth0_obo.keys import VerificationKey

OBO_PROFILE = "on_behalf_of_token_exchange"
#: Claims of an exchanged token worth showing: who, for whom, where, what.
SHOWN_CLAIMS = ("sub", "act", "aud", "scope", "azp", "org_id")


class Command(BaseCommand):
    help = "Check the AUTH0_OBO settings and the tenant; optionally try an exchange."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--exchange",
            metavar="AUDIENCE",
            help="Exchange the access token read from stdin for AUDIENCE (on-behalf-of).",
        )
        parser.add_argument("--scope", help="Scope to ask for with --exchange.")
        parser.add_argument(
            "--tenant-config",
            action="store_true",
            help="Print the tenant configuration token exchange needs (Deploy CLI YAML and "
            "Management API JSON) and exit.",
        )
        parser.add_argument(
            "--audience",
            action="append",
            default=[],
            metavar="AUDIENCE[=SCOPE,...]",
            help="A downstream API this API exchanges tokens for (repeatable), for "
            "--tenant-config.",
        )
        parser.add_argument(
            "--client-name", help="Name of the Custom API client, for --tenant-config."
        )
        parser.add_argument(
            "--dpop",
            action="store_true",
            default=None,
            help="Downstream APIs require DPoP-bound tokens (default: when DPOP_CLIENT_KEY is "
            "set), for --tenant-config.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant_config"]:
            self.print_tenant_config(
                options["audience"], options.get("client_name"), options.get("dpop")
            )
            return
        self.run_system_checks()
        for issuer in sorted(obo_settings.issuers):
            self.check_issuer(issuer)
        if options["exchange"]:
            self.try_exchange(options["exchange"], options.get("scope"))
        self.stdout.write(self.style.SUCCESS("OK"))

    # Settings and tenant.

    def run_system_checks(self) -> None:
        messages = checks.run_checks(tags=["auth0_obo"])
        errors = [m for m in messages if m.is_serious()]
        for message in messages:
            self.stdout.write(f"{message.id}: {message.msg}")
        if errors:
            raise CommandError(f"{len(errors)} settings error(s); fix them first.")
        self.stdout.write("Settings: OK")

    def check_issuer(self, issuer: str) -> None:
        """Ask the key store what it would hold now: the keys it uses and those it skips."""
        from django_auth0_obo import keys

        try:
            report = keys.inspect_issuer(issuer)
        except keys.KeysUnavailable as error:
            raise CommandError(f"{issuer}: {error.detail}") from error
        algorithms = sorted(set(obo_settings.ALGORITHMS) & jose.ASYMMETRIC_ALGORITHMS)
        self.stdout.write(f"Issuer {issuer}")
        self.stdout.write(f"  discovery: OK, token endpoint {report.token_endpoint}")
        self.stdout.write(f"  JWKS: {report.jwks_uri}")
        for kid, key in report.keys.items():
            usable = [alg for alg in algorithms if key.accepts(alg)]
            use = f"verifies {', '.join(usable)}" if usable else "matches none of ALGORITHMS"
            self.stdout.write(f"  key {kid}: {describe_key(key)}; {use}")
        for skipped in report.skipped:
            self.stdout.write(f"  skipped key {skipped.kid}: {skipped.reason}")
        if not report.keys:
            raise CommandError(f"{issuer}: the JWKS holds no key the verifier can use.")

    # Exchange.

    def try_exchange(self, audience: str, scope: str | None) -> None:
        from django_auth0_obo.exchange import get_token_on_behalf_of

        token = sys.stdin.readline().strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise CommandError("--exchange reads an access token from stdin; none was given.")
        try:
            result = get_token_on_behalf_of(token, audience, scope)
        except Auth0OboError as error:
            raise CommandError(f"Exchange for {audience} failed: {error}") from error
        self.stdout.write(f"Exchange for {audience}: OK")
        for name in ("token_type", "issued_token_type", "scope", "expires_in", "expires_at"):
            if result.get(name) is not None:
                self.stdout.write(f"  {name}: {result[name]}")
        claims = jwt.decode(result["access_token"], options={"verify_signature": False})
        shown = {k: claims[k] for k in SHOWN_CLAIMS if k in claims}
        self.stdout.write("  new token's claims (unverified): " + json.dumps(shown))

    # Tenant configuration.

    def print_tenant_config(
        self, audiences: list[str], client_name: str | None, dpop: bool | None = None
    ) -> None:
        resource = obo_settings.resource
        if not resource:
            raise CommandError("AUDIENCE (or RESOURCE) must be set.")
        if not audiences:
            raise CommandError("Name the downstream APIs with --audience AUDIENCE[=SCOPE,...].")
        name = client_name or f"{resource} (token exchange)"
        client = tenant_client(name, resource)
        grants = [
            client_grant(obo_settings.CLIENT_ID or "<client_id of the client above>", aud, scopes)
            for aud, scopes in map(parse_audience, audiences)
        ]
        out = self.stdout.write
        out("# Auth0 Deploy CLI (tenant.yaml):")
        out("clients:")
        out(f"  - name: {json.dumps(name)}")
        for key in ("app_type", "resource_server_identifier", "token_endpoint_auth_method"):
            if key in client:
                out(f"    {key}: {json.dumps(client[key])}")
        out("    token_exchange:")
        out("      allow_any_profile_of_type:")
        out(f"        - {OBO_PROFILE}")
        for key in CLIENT_EXTRAS:
            if key in client:
                out(yaml_block({key: client[key]}, 4))
        out("clientGrants:")
        for grant in grants:
            out(f"  - client_id: {json.dumps(name)}")
            out(f"    audience: {json.dumps(grant['audience'])}")
            out("    scope:" + ("" if grant["scope"] else " []"))
            for scope in grant["scope"]:
                out(f"      - {json.dumps(scope)}")
            out("    subject_type: user")
        apis = [downstream_api(aud, want_dpop(dpop)) for aud, _ in map(parse_audience, audiences)]
        out("resourceServers:  # the downstream APIs (merge into their existing entries)")
        for api in apis:
            out(f"  - name: {json.dumps(api['identifier'])}")
            out(yaml_block({k: v for k, v in api.items() if k != "name"}, 4))
        out("")
        for api in apis:
            out(f"# Management API: PATCH /api/v2/resource-servers/<id of {api['identifier']}>")
            out(json.dumps({k: v for k, v in api.items() if k not in ("name", "identifier")}))
        out("# Management API: POST /api/v2/clients")
        out(json.dumps(client, indent=2))
        out("# Management API: POST /api/v2/client-grants (one per downstream API)")
        for grant in grants:
            out(json.dumps(grant, indent=2))


def describe_key(key: VerificationKey) -> str:
    """``RSA RS256 (2048 bits)``, ``EC ES256 P-256``, ``OKP Ed25519``: what a key is."""
    public = key.public
    parts = [public.kty, key.alg or ""]
    if public.crv:
        parts.append(public.crv)
    if public.kty == "RSA":
        parts.append(f"({public.key.key_size} bits)")
    return " ".join(p for p in parts if p)


#: Client fields printed only when the settings call for them.
CLIENT_EXTRAS = ("client_authentication_methods", "token_endpoint_ip_header_trusted")


def tenant_client(name: str, resource: str) -> dict[str, Any]:
    """The Custom API client allowed to exchange on behalf of users (no secret: Auth0 makes it).

    With ``private_key_jwt`` it registers the public half of CLIENT_ASSERTION_KEY instead of a
    secret method; with FORWARD_USER_IP it trusts the ``auth0-forwarded-for`` header."""
    client: dict[str, Any] = {
        "name": name,
        "app_type": "resource_server",
        "resource_server_identifier": resource,
        "token_endpoint_auth_method": obo_settings.CLIENT_AUTH_METHOD,
        "token_exchange": {"allow_any_profile_of_type": [OBO_PROFILE]},
    }
    if obo_settings.CLIENT_AUTH_METHOD == "private_key_jwt":
        del client["token_endpoint_auth_method"]  # Auth0: unset when a credential is used
        client["client_authentication_methods"] = {
            "private_key_jwt": {
                "credentials": [
                    {
                        "name": f"{name} assertion key",
                        "credential_type": "public_key",
                        "pem": assertion_public_pem(),
                        "alg": "RS256",
                    }
                ]
            }
        }
    if obo_settings.FORWARD_USER_IP:
        client["token_endpoint_ip_header_trusted"] = True
    return client


def assertion_public_pem() -> str:
    """The PEM of CLIENT_ASSERTION_KEY's public half (safe to print), or a placeholder."""
    from cryptography.hazmat.primitives import serialization

    from django_auth0_obo.client_assertion import load_assertion_key
    from django_auth0_obo.exceptions import ConfigurationError

    try:
        key = load_assertion_key().private_key.public_key()
    except ConfigurationError:
        return "<PEM of the public half of CLIENT_ASSERTION_KEY>"
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def want_dpop(flag: bool | None) -> bool:
    """Whether downstream APIs should require DPoP: ``--dpop``, else DPOP_CLIENT_KEY is set."""
    return bool(obo_settings.DPOP_CLIENT_KEY) if flag is None else flag


def downstream_api(audience: str, dpop: bool) -> dict[str, Any]:
    """A downstream API's settings the on-behalf-of guide requires.

    Users' delegated access through client grants (the user-subject grants printed with it),
    consent skipped for first-party clients (an exchange cannot show a consent screen) and, when
    DPoP binding is wanted, proof-of-possession required, so the tenant binds the tokens it
    issues to this API's key instead of silently issuing Bearer tokens."""
    api: dict[str, Any] = {
        "name": audience,
        "identifier": audience,
        "skip_consent_for_verifiable_first_party_clients": True,
        "subject_type_authorization": {"user": {"policy": "require_client_grant"}},
    }
    if dpop:
        api["proof_of_possession"] = {"mechanism": "dpop", "required": True}
    return api


def yaml_block(data: dict[str, Any], indent: int) -> str:
    """``data`` as block YAML at ``indent`` spaces; scalars written as JSON (valid YAML)."""
    pad = " " * indent
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(yaml_block(value, indent + 2))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{pad}{key}:")
            for item in value:
                block = yaml_block(item, indent + 4)
                lines.append(f"{pad}  - {block.lstrip()}")
        else:
            lines.append(f"{pad}{key}: {json.dumps(value)}")
    return "\n".join(lines)


def client_grant(client_id: str, audience: str, scopes: list[str]) -> dict[str, Any]:
    """A user-subject grant letting ``client_id`` get tokens for ``audience`` for users."""
    return {"client_id": client_id, "audience": audience, "scope": scopes, "subject_type": "user"}


def parse_audience(value: str) -> tuple[str, list[str]]:
    """``https://api.example.com=read:a,write:a`` → ``("https://api.example.com", [...])``."""
    audience, _, scopes = value.partition("=")
    if not audience.strip():
        raise CommandError(f"Bad --audience {value!r}.")
    return audience.strip(), [s for s in scopes.replace(" ", ",").split(",") if s]

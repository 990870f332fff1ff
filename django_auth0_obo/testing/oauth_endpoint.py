"""``POST /oauth/token`` of the stand-in: client authentication and the grants the app uses.

Auth0-like behaviour, errors as RFC 6749 §5.2 bodies: client credentials, the on-behalf-of
token exchange (RFC 8693 with Auth0's profile, nested ``act``), Custom Token Exchange profiles,
the Token Vault grant, and DPoP binding with the nonce dance. Pure request → reply logic; the
HTTP plumbing lives in :mod:`django_auth0_obo.testing.server`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import jwt

from django_auth0_obo.testing.client_assertions import AssertionRefused, authenticate_assertion
from django_auth0_obo.testing.config import (
    GRANT_CLIENT_CREDENTIALS,
    GRANT_FEDERATED,
    GRANT_TOKEN_EXCHANGE,
    TOKEN_TYPE_ACCESS_TOKEN,
    TOKEN_TYPE_FEDERATED,
    ApiConfig,
    ClientConfig,
    ExchangeProfileError,
)
from django_auth0_obo.testing.proofs import CheckedProof, ProofError, check_proof
from django_auth0_obo.testing.state import TenantState, TokenRequest

#: Form fields never kept verbatim in :attr:`TenantState.token_requests`.
REDACTED_FIELDS = frozenset({"client_secret", "client_assertion"})
REDACTED = "[redacted]"


class OAuthError(Exception):
    """An error reply: ``{"error": ..., "error_description": ...}`` with an HTTP status."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


#: A grant served by another part of the stand-in: ``(state, headers, form) -> reply body``.
GrantHandler = Callable[[TenantState, Mapping[str, list[str]], Mapping[str, str]], dict[str, Any]]


def handle_token_request(
    state: TenantState,
    headers: Mapping[str, list[str]],
    body: bytes,
    extra_grants: Mapping[str, GrantHandler] | None = None,
) -> Reply:
    """Answer one token request and log it in ``state``. ``headers`` maps lower-cased names to
    all their values. ``extra_grants`` handles grant types this module does not know (the
    authorization server's ``authorization_code``), client authentication included."""
    record = describe_token_request(headers, body)
    try:
        form = _parse_form(headers, body)
        proofs = headers.get("dpop", [])
        proof = _check_dpop(state, proofs)
        extra = (extra_grants or {}).get(str(form.get("grant_type")))
        if extra is not None:
            reply = Reply(200, extra(state, headers, form))
        else:
            client, record.auth_method = _authenticate(state, headers, form)
            record.client_id = client.client_id
            reply = _dispatch(state, client, form, proof)
    except OAuthError as exc:
        body_json = {"error": exc.error, "error_description": exc.description}
        reply = Reply(exc.status, body_json, exc.headers)
        record.error = exc.error
    reply.headers.setdefault("Cache-Control", "no-store")
    reply.headers.setdefault("Pragma", "no-cache")
    nonce = state.dpop_nonce
    if nonce is not None:
        reply.headers.setdefault("DPoP-Nonce", nonce)
    record.status = reply.status
    state.record_token_request(record)
    return reply


def log_faulted_token_request(
    state: TenantState, headers: Mapping[str, list[str]], body: bytes, status: int | None
) -> None:
    """Log a token request an injected fault answered (``status`` None: connection dropped)."""
    record = describe_token_request(headers, body)
    record.status = status
    record.error = "injected_fault"
    state.record_token_request(record)


def describe_token_request(headers: Mapping[str, list[str]], body: bytes) -> TokenRequest:
    """The record of a token request, built before (and whatever) the endpoint answers."""
    safe_headers = {
        name: (REDACTED if name == "authorization" else ", ".join(values))
        for name, values in headers.items()
    }
    record = TokenRequest(form={}, headers=safe_headers)
    proofs = headers.get("dpop", [])
    record.dpop_proof = proofs[0] if proofs else None
    authorization = (headers.get("authorization") or [""])[0]
    if authorization[:6].lower() == "basic ":
        record.auth_method = "client_secret_basic"
    try:
        form = _parse_form(headers, body)
    except OAuthError:
        return record
    record.form = {k: (REDACTED if k in REDACTED_FIELDS else v) for k, v in form.items()}
    record.grant_type = form.get("grant_type")
    record.client_id = form.get("client_id")
    if record.auth_method is None and "client_secret" in form:
        record.auth_method = "client_secret_post"
    if record.auth_method is None and "client_assertion" in form:
        record.auth_method = "private_key_jwt"
    return record


#: Parameters RFC 6749 §3.2 / RFC 8693 forbid repeating; any other parameter may repeat.
STANDARD_PARAMETERS = frozenset(
    {
        "grant_type",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "subject_token",
        "subject_token_type",
        "actor_token",
        "actor_token_type",
        "requested_token_type",
        "audience",
        "scope",
        "connection",
        "login_hint",
    }
)


def _parse_form(headers: Mapping[str, list[str]], body: bytes) -> dict[str, Any]:
    content_type = (headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "The request body is not UTF-8.") from exc
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise OAuthError("invalid_request", "The request body is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "The request body must be a JSON object.")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "Content-Type must be application/x-www-form-urlencoded."
        )
    parsed = parse_qs(text, keep_blank_values=True)
    repeated = sorted(k for k, v in parsed.items() if len(v) > 1 and k in STANDARD_PARAMETERS)
    if repeated:
        raise OAuthError("invalid_request", f"Parameters repeated: {', '.join(repeated)}.")
    # Extension parameters may repeat (how SDKs send a list): keep every value.
    return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}


def _check_dpop(state: TenantState, proofs: list[str]) -> CheckedProof | None:
    if not proofs:
        return None
    if len(proofs) > 1:
        raise OAuthError("invalid_dpop_proof", "Only one DPoP header is allowed.")
    try:
        proof = check_proof(
            proofs[0],
            method="POST",
            url=state.token_endpoint,
            algorithms=state.dpop_algorithms,
        )
    except ProofError as exc:
        raise OAuthError("invalid_dpop_proof", str(exc)) from exc
    if not state.remember_jti(proof.claims["jti"]):
        raise OAuthError("invalid_dpop_proof", "DPoP proof jti was already used.")
    nonce = state.dpop_nonce
    if nonce is not None and proof.claims.get("nonce") != nonce:
        raise OAuthError(
            "use_dpop_nonce",
            "Authorization server requires nonce in DPoP proof.",
            headers={"DPoP-Nonce": nonce},
        )
    return proof


def _authenticate(
    state: TenantState, headers: Mapping[str, list[str]], form: Mapping[str, str]
) -> tuple[ClientConfig, str]:
    authorization = (headers.get("authorization") or [""])[0]
    has_basic = authorization[:6].lower() == "basic "
    if (has_basic + ("client_secret" in form) + ("client_assertion" in form)) > 1:
        raise OAuthError("invalid_request", "Use only one client authentication method.")
    if has_basic:
        method = "client_secret_basic"
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _invalid_client("Malformed HTTP Basic credentials.", basic=True) from exc
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise _invalid_client("Malformed HTTP Basic credentials.", basic=True)
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form.get("client_id", client_id) != client_id:
            raise _invalid_client("client_id does not match the credentials.", basic=True)
    elif "client_secret" in form:
        method = "client_secret_post"
        client_id, secret = form.get("client_id", ""), form["client_secret"]
    elif "client_assertion" in form or "client_assertion_type" in form:
        try:
            asserted = authenticate_assertion(state, form)
        except AssertionRefused as exc:
            raise _invalid_client(str(exc)) from exc
        if asserted.auth_method not in ("any", "private_key_jwt"):
            raise _invalid_client(f"The client is configured for {asserted.auth_method}.")
        return asserted, "private_key_jwt"
    else:
        raise _invalid_client("Client authentication is required.")
    client = state.clients.get(client_id)
    known = client is not None and hmac.compare_digest(
        secret.encode("utf-8"), client.secret.encode("utf-8")
    )
    if client is None or not known:
        raise _invalid_client("Invalid client credentials.", basic=has_basic)
    if client.auth_method not in ("any", method):
        raise _invalid_client(
            f"The client is configured for {client.auth_method}.", basic=has_basic
        )
    return client, method


def _invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="local-tenant"'} if basic else None
    return OAuthError("invalid_client", description, 401, headers)


def _dispatch(
    state: TenantState,
    client: ClientConfig,
    form: Mapping[str, str],
    proof: CheckedProof | None,
) -> Reply:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "Missing required parameter: grant_type.")
    if grant_type == GRANT_CLIENT_CREDENTIALS:
        return _client_credentials(state, client, form, proof)
    if grant_type == GRANT_TOKEN_EXCHANGE:
        subject_token_type = form.get("subject_token_type")
        if not subject_token_type:
            raise OAuthError("invalid_request", "Missing required parameter: subject_token_type.")
        profile = state.exchange_profiles.get(subject_token_type)
        if profile is not None:
            return _custom_exchange(state, client, form, proof, profile.handler)
        if subject_token_type == TOKEN_TYPE_ACCESS_TOKEN:
            return _on_behalf_of(state, client, form, proof)
        raise OAuthError("invalid_request", "Unsupported subject_token_type.")
    if grant_type == GRANT_FEDERATED:
        return _token_vault(state, client, form)
    raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant_type}.")


def _client_credentials(
    state: TenantState,
    client: ClientConfig,
    form: Mapping[str, str],
    proof: CheckedProof | None,
) -> Reply:
    audience = _require(form, "audience")
    api = state.apis.get(audience)
    if api is None:
        raise OAuthError("invalid_target", f"Service not found: {audience}.")
    if audience not in client.grants:
        raise OAuthError("access_denied", "Client is not authorized to access this API.", 403)
    scopes, _ = _grant_scopes(form.get("scope"), client.grants[audience], api.scopes)
    claims: dict[str, Any] = {
        "sub": f"{client.client_id}@clients",
        "aud": audience,
        "azp": client.client_id,
        "gty": "client-credentials",
    }
    if scopes:
        claims["scope"] = scopes
    bound = proof is not None and api.allow_dpop
    return _token_reply(state, claims, state.exchange_token_lifetime, proof, bound, scopes)


def _on_behalf_of(
    state: TenantState,
    client: ClientConfig,
    form: Mapping[str, str],
    proof: CheckedProof | None,
) -> Reply:
    if not client.obo_enabled or not client.api:
        raise OAuthError(
            "unauthorized_client",
            "The client is not allowed to perform the on-behalf-of token exchange.",
            403,
        )
    subject_token = _require(form, "subject_token")
    if form.get("requested_token_type") != TOKEN_TYPE_ACCESS_TOKEN:
        raise OAuthError(
            "invalid_request", f"requested_token_type must be {TOKEN_TYPE_ACCESS_TOKEN}."
        )
    audience = _require(form, "audience")
    subject = _verify_subject(state, subject_token, client.api)
    if subject.get("gty") == "client-credentials":
        raise OAuthError("invalid_grant", "The subject token must represent a user.")
    prior_act = subject.get("act")
    depth = _delegation_depth(prior_act)
    if depth + 1 > state.max_delegation_depth:
        raise OAuthError("invalid_request", "The delegation chain is too long.")
    api = state.apis.get(audience)
    if api is None:
        raise OAuthError("invalid_target", f"Service not found: {audience}.")
    if audience not in client.grants:
        raise OAuthError(
            "access_denied", "The client has no user-subject grant for this audience.", 403
        )
    requested = form.get("scope")
    scopes, echo = _grant_scopes(requested, client.grants[audience], api.scopes)
    act: dict[str, Any] = {"sub": client.client_id}
    if prior_act is not None:
        act["act"] = prior_act
    claims: dict[str, Any] = {"sub": subject["sub"], "aud": audience, "azp": client.client_id}
    if scopes:
        claims["scope"] = scopes
    for carried in ("org_id", "org_name"):
        if carried in subject:
            claims[carried] = subject[carried]
    claims["act"] = act
    return _exchanged_token_reply(state, api, claims, proof, scopes if echo else None)


def _exchanged_token_reply(
    state: TenantState,
    api: ApiConfig,
    claims: dict[str, Any],
    proof: CheckedProof | None,
    echoed_scope: str | None,
) -> Reply:
    """An exchange's answer: bound to the proof's key when the target API allows DPoP."""
    return _token_reply(
        state,
        claims,
        state.exchange_token_lifetime,
        proof,
        proof is not None and api.allow_dpop,
        echoed_scope,
        issued_token_type=TOKEN_TYPE_ACCESS_TOKEN,
    )


def _custom_exchange(
    state: TenantState,
    client: ClientConfig,
    form: Mapping[str, str],
    proof: CheckedProof | None,
    handler: Any,
) -> Reply:
    _require(form, "subject_token")
    audience = form.get("audience") or state.default_audience
    api = state.apis.get(audience)
    if api is None:
        raise OAuthError("invalid_target", f"Service not found: {audience}.")
    try:
        result = dict(handler(form))
    except ExchangeProfileError as exc:
        raise OAuthError(exc.error, exc.description or exc.error, exc.status) from exc
    if "error" in result:
        raise OAuthError(
            str(result["error"]),
            str(result.get("error_description", "")),
            int(result.get("status", 400)),
        )
    if "sub" not in result:
        raise OAuthError("server_error", "The exchange profile returned no sub.", 500)
    asked = list(dict.fromkeys((form.get("scope") or "").split()))
    kept = [s for s in asked if not api.scopes or s in api.scopes]
    scopes, echo = " ".join(kept), kept != asked
    claims: dict[str, Any] = {"aud": audience, "azp": client.client_id}
    if scopes:
        claims["scope"] = scopes
    claims.update(result)
    return _exchanged_token_reply(state, api, claims, proof, scopes if echo else None)


def _token_vault(state: TenantState, client: ClientConfig, form: Mapping[str, str]) -> Reply:
    connection_name = _require(form, "connection")
    subject_token = _require(form, "subject_token")
    if form.get("subject_token_type") != TOKEN_TYPE_ACCESS_TOKEN:
        raise OAuthError(
            "invalid_request",
            f"The local tenant supports subject_token_type {TOKEN_TYPE_ACCESS_TOKEN} only.",
        )
    if form.get("requested_token_type") != TOKEN_TYPE_FEDERATED:
        raise OAuthError("invalid_request", f"requested_token_type must be {TOKEN_TYPE_FEDERATED}.")
    if not client.api:
        raise OAuthError(
            "unauthorized_client", "Only a Custom API client may exchange access tokens.", 403
        )
    subject = _verify_subject(state, subject_token, client.api)
    connection = state.connections.get(connection_name)
    if connection is None:
        raise OAuthError("invalid_target", f"Connection not found: {connection_name}.")
    if connection.users is not None and subject["sub"] not in connection.users:
        raise OAuthError(
            "federated_connection_refresh_token_not_found",
            "Federated connection refresh token not found.",
            401,
        )
    federated = state.issue_federated(connection_name, subject["sub"], form.get("login_hint"))
    body: dict[str, Any] = {
        "access_token": federated,
        "expires_in": connection.expires_in,
        "token_type": "Bearer",
        "issued_token_type": TOKEN_TYPE_FEDERATED,
    }
    if connection.scopes:
        body["scope"] = " ".join(connection.scopes)
    return Reply(200, body)


def _require(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"Missing required parameter: {name}.")
    return value


def _verify_subject(state: TenantState, token: str, audience: str) -> dict[str, Any]:
    try:
        return state.verify(token, audience=audience)
    except jwt.InvalidAudienceError as exc:
        raise OAuthError(
            "invalid_grant", "The subject token was not issued for this client's API.", 401
        ) from exc
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise OAuthError("invalid_grant", "Invalid subject token.", 401) from exc


def _delegation_depth(act: Any) -> int:
    depth = 0
    while act is not None:
        if not isinstance(act, dict) or not isinstance(act.get("sub"), str):
            raise OAuthError("invalid_grant", "The subject token has a malformed act claim.")
        depth += 1
        act = act.get("act")
    return depth


def _grant_scopes(
    requested: str | None,
    granted: tuple[str, ...],
    api_scopes: tuple[str, ...],
) -> tuple[str, bool]:
    """``(scope string, echo)``: the requested scopes the grant allows (all when none were
    asked for); ``echo`` says whether the reply must state them (differs from the request)."""
    allowed = [s for s in granted if not api_scopes or s in api_scopes]
    asked = list(dict.fromkeys((requested or "").split()))
    if not asked:
        return " ".join(allowed), True
    result = [s for s in asked if s in allowed]
    if not result:
        raise OAuthError("invalid_scope", "None of the requested scopes is granted.")
    return " ".join(result), result != asked


def _token_reply(
    state: TenantState,
    claims: dict[str, Any],
    lifetime: int,
    proof: CheckedProof | None,
    bound: bool,
    scope: str | None,
    issued_token_type: str | None = None,
) -> Reply:
    if bound and proof is not None:
        claims["cnf"] = {"jkt": proof.jkt}
    token = state.issue(claims, lifetime)
    body: dict[str, Any] = {
        "access_token": token,
        "expires_in": lifetime,
        "token_type": "DPoP" if bound else "Bearer",
    }
    if scope:
        body["scope"] = scope
    if issued_token_type:
        body["issued_token_type"] = issued_token_type
    return Reply(200, body)

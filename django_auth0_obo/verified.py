"""``VerifiedToken``: what ``request.auth`` holds after a successful authentication."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django_auth0_obo import tokens
from django_auth0_obo.act import get_current_actor, get_delegation_chain
from django_auth0_obo.conf import as_tuple, obo_settings
from django_auth0_obo.tokens import Verification

if TYPE_CHECKING:
    from django_auth0_obo.on_behalf_of import OnBehalfOfTokenResult


class VerifiedToken:
    """An access token whose signature, claims and (for DPoP) proof have been checked.

    ``token`` is the raw string, kept only so it can be exchanged; it is left out of ``repr`` and
    must never be logged or stored.
    """

    __slots__ = ("__dict__", "audience", "bound_jkt", "claims", "jkt", "scheme", "token")

    def __init__(
        self,
        token: str,
        claims: Mapping[str, Any],
        scheme: str = "Bearer",
        jkt: str | None = None,
        *,
        audience: str | None = None,
        bound_jkt: str | None = None,
    ) -> None:
        self.token = token
        self.claims = claims
        self.scheme = scheme
        #: Thumbprint of the DPoP proof's key, once the proof was verified; else None.
        self.jkt = jkt
        #: The accepted audience the token matched (the view's narrowing, else the settings').
        #: Tokens built by hand without it get the first of their ``aud`` values the settings
        #: accept.
        self.audience = audience if audience is not None else _settings_audience(claims)
        #: The token's ``cnf.jkt`` as verified, or None for an unbound token.
        self.bound_jkt = bound_jkt if bound_jkt is not None else tokens.bound_jkt(claims)

    @classmethod
    def from_verification(
        cls, token: str, verification: Verification, scheme: str = "Bearer", jkt: str | None = None
    ) -> VerifiedToken:
        """The token as :func:`tokens.verify` matched it (audience and binding recorded).

        Built without ``__init__``: verification already matched the audience and read the
        binding (None for an unbound token, which ``__init__`` would look up again)."""
        verified = cls.__new__(cls)
        verified.token = token
        verified.claims = verification.claims
        verified.scheme = scheme
        verified.jkt = jkt
        verified.audience = verification.audience
        verified.bound_jkt = verification.bound_jkt
        return verified

    @property
    def sub(self) -> str:
        sub: str = self.claims["sub"]  # always present and a string once verified
        return sub

    @cached_property
    def scopes(self) -> frozenset[str]:
        """Granted scopes: the space-separated ``scope`` claim plus Auth0 RBAC ``permissions``."""
        granted: set[str] = set()
        scope = self.claims.get("scope")
        if isinstance(scope, str):  # RFC 6749 §3.3: separated by spaces, not any whitespace
            granted.update(scope.split(" "))
            granted.discard("")
        permissions = self.claims.get("permissions")
        if isinstance(permissions, list):
            granted.update(p for p in permissions if isinstance(p, str))
        return frozenset(granted)

    @cached_property
    def current_actor(self) -> str | None:
        """The outermost ``act.sub``: the only actor to authorize on (RFC 8693 §4.1)."""
        return get_current_actor(self.claims)

    @cached_property
    def delegation_chain(self) -> list[str]:
        """Every actor, newest first; earlier actors are for audit only."""
        return get_delegation_chain(self.claims)

    @cached_property
    def actor_client_id(self) -> str | None:
        """The current actor's client, ``act.client_id`` (Auth0's agents as principals: the
        actor is an agent ``agt_…`` acting through that client), else None."""
        return _actor_member(self.claims, "client_id")

    @cached_property
    def actor_profile(self) -> str | None:
        """The current actor's profile, ``act.sub_profile`` (e.g. ``"ai_agent"``), else None."""
        return _actor_member(self.claims, "sub_profile")

    @property
    def is_delegated(self) -> bool:
        return self.claims.get("act") is not None

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])

    def on_behalf_of(self, audience: str, scope: str | None = None) -> OnBehalfOfTokenResult:
        """Exchange this token for one scoped to ``audience``, keeping the user's ``sub``."""
        # Imported here, not at the top: the exchange loads the models, and this module must stay
        # importable before the app registry is ready (authentication classes, type hints).
        from django_auth0_obo.on_behalf_of import get_token_on_behalf_of

        return get_token_on_behalf_of(self, audience, scope)

    async def aon_behalf_of(self, audience: str, scope: str | None = None) -> OnBehalfOfTokenResult:
        """:meth:`on_behalf_of` for coroutines: never blocks the event loop."""
        from django_auth0_obo.on_behalf_of import aget_token_on_behalf_of

        return await aget_token_on_behalf_of(self, audience, scope)

    def __repr__(self) -> str:
        return f"<VerifiedToken scheme={self.scheme} sub={self.claims.get('sub')!r}>"

    def __str__(self) -> str:
        return repr(self)


def _settings_audience(claims: Mapping[str, Any]) -> str:
    value = claims.get("aud")
    listed = as_tuple(value) if isinstance(value, str | list) else ()
    aud = [a for a in listed if isinstance(a, str)]
    for accepted in obo_settings.audiences:
        if accepted in aud:
            return accepted
    return aud[0] if aud else ""


def _actor_member(claims: Mapping[str, Any], name: str) -> str | None:
    act = claims.get("act")
    value = act.get(name) if isinstance(act, Mapping) else None
    return value if isinstance(value, str) and value else None

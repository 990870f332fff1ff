"""``VerifiedToken``: what ``request.auth`` holds after a successful authentication."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django_auth0_obo.act import get_current_actor, get_delegation_chain

if TYPE_CHECKING:
    from django_auth0_obo.exchange import OnBehalfOfTokenResult


class VerifiedToken:
    """An access token whose signature, claims and (for DPoP) proof have been checked.

    ``token`` is the raw string, kept only so it can be exchanged; it is left out of ``repr`` and
    must never be logged or stored.
    """

    __slots__ = ("__dict__", "claims", "jkt", "scheme", "token")

    def __init__(
        self, token: str, claims: Mapping[str, Any], scheme: str = "Bearer", jkt: str | None = None
    ) -> None:
        self.token = token
        self.claims = claims
        self.scheme = scheme
        self.jkt = jkt

    @property
    def sub(self) -> str:
        sub: str = self.claims["sub"]  # always present and a string once verified
        return sub

    @cached_property
    def scopes(self) -> frozenset[str]:
        """Granted scopes: the space-separated ``scope`` claim plus Auth0 RBAC ``permissions``."""
        granted: set[str] = set()
        scope = self.claims.get("scope")
        if isinstance(scope, str):
            granted.update(scope.split())
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

    @property
    def is_delegated(self) -> bool:
        return self.claims.get("act") is not None

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])

    def on_behalf_of(self, audience: str, scope: str | None = None) -> OnBehalfOfTokenResult:
        """Exchange this token for one scoped to ``audience``, keeping the user's ``sub``."""
        from django_auth0_obo.exchange import get_token_on_behalf_of

        return get_token_on_behalf_of(self, audience, scope)

    async def aon_behalf_of(self, audience: str, scope: str | None = None) -> OnBehalfOfTokenResult:
        """:meth:`on_behalf_of` for coroutines: never blocks the event loop."""
        from django_auth0_obo.exchange import aget_token_on_behalf_of

        return await aget_token_on_behalf_of(self, audience, scope)

    def __repr__(self) -> str:
        return f"<VerifiedToken scheme={self.scheme} sub={self.claims.get('sub')!r}>"

    def __str__(self) -> str:
        return repr(self)

"""The RFC 8693 ``act`` claim: who is acting for the token's subject.

Pure functions over verified claims, with the semantics of Auth0's SDK: the outermost ``act.sub``
is the current actor (the only one to authorize on); nested ``act`` values are earlier actors,
kept for audit. A malformed ``act`` is an error, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_auth0_obo.exceptions import InvalidActClaim


def get_current_actor(claims: Mapping[str, Any]) -> str | None:
    """Return the outermost ``act.sub``, or None when the token is not delegated."""
    if not isinstance(claims, Mapping):
        raise InvalidActClaim()
    act = claims.get("act")
    if act is None:
        return None
    return _actor_sub(act)


def get_delegation_chain(claims: Mapping[str, Any]) -> list[str]:
    """Return every actor, newest (the current actor) first; [] when not delegated."""
    if not isinstance(claims, Mapping):
        raise InvalidActClaim()
    chain: list[str] = []
    act = claims.get("act")
    while act is not None:
        chain.append(_actor_sub(act))
        act = act.get("act")
    return chain


def _actor_sub(act: Any) -> str:
    if not isinstance(act, Mapping):
        raise InvalidActClaim()
    sub = act.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise InvalidActClaim()
    return sub

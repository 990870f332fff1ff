"""The ``act`` claim (Auth0's semantics), ``VerifiedToken`` and ``Auth0User``."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from hypothesis import given
from hypothesis import strategies as st

from django_auth0_obo import get_current_actor, get_delegation_chain
from django_auth0_obo.exceptions import InvalidActClaim, InvalidToken
from django_auth0_obo.user import Auth0User
from django_auth0_obo.verified import VerifiedToken

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHx1c2VyMTIzIn0.c2lnbmF0dXJlLXNlY3JldA"


def nest(actors: list[str]) -> dict[str, Any]:
    """Claims whose ``act`` chain is ``actors``, newest first (as Auth0 nests them)."""
    act: dict[str, Any] | None = None
    for actor in reversed(actors):
        act = {"sub": actor, **({"act": act} if act is not None else {})}
    return {"sub": "auth0|user123", **({"act": act} if act is not None else {})}


# get_current_actor / get_delegation_chain -------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "actor", "chain"),
    [
        ({"sub": "u"}, None, []),
        ({"sub": "u", "act": None}, None, []),
        ({"sub": "u", "act": {"sub": "mcp"}}, "mcp", ["mcp"]),
        (nest(["mcp", "agent", "app"]), "mcp", ["mcp", "agent", "app"]),
        ({"sub": "u", "act": {"sub": "mcp", "iss": "x", "act": None}}, "mcp", ["mcp"]),
    ],
    ids=["not delegated", "null act", "one actor", "three actors", "extra members"],
)
def test_the_outermost_actor_is_current_and_the_chain_is_newest_first(
    claims: dict[str, Any], actor: str | None, chain: list[str]
) -> None:
    assert get_current_actor(claims) == actor
    assert get_delegation_chain(claims) == chain


@pytest.mark.parametrize(
    "claims",
    [
        {"act": "mcp"},
        {"act": ["mcp"]},
        {"act": {}},
        {"act": {"sub": ""}},
        {"act": {"sub": "   "}},
        {"act": {"sub": 7}},
        {"act": {"client_id": "mcp"}},
        {"act": {"sub": "mcp", "act": "agent"}},
        {"act": {"sub": "mcp", "act": {"sub": None}}},
        "not a mapping",
    ],
    ids=[
        "string",
        "list",
        "empty",
        "empty sub",
        "blank sub",
        "numeric sub",
        "no sub",
        "nested string",
        "nested null sub",
        "claims not a mapping",
    ],
)
def test_a_malformed_act_is_an_error(claims: Any) -> None:
    with pytest.raises(InvalidActClaim):
        get_delegation_chain(claims)
    if not (isinstance(claims, dict) and isinstance(claims.get("act"), dict)):
        with pytest.raises(InvalidActClaim):
            get_current_actor(claims)


def test_an_invalid_act_claim_is_an_invalid_token() -> None:
    error = InvalidActClaim()

    assert isinstance(error, InvalidToken)
    assert error.error == "invalid_token"
    assert error.status_code == 401


actor_ids = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")


@given(actors=st.lists(actor_ids, max_size=8))
def test_any_well_formed_chain_round_trips(actors: list[str]) -> None:
    claims = nest(actors)

    assert get_delegation_chain(claims) == actors
    assert get_current_actor(claims) == (actors[0] if actors else None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["sub", "act", "x"]), children, max_size=3)
    ),
    max_leaves=12,
)


@given(act=json_values)
def test_any_act_structure_gives_a_chain_of_actors_or_invalid_act_claim(act: Any) -> None:
    claims = {"sub": "u", "act": act}
    try:
        chain = get_delegation_chain(claims)
    except InvalidActClaim:  # anything else escaping fails the test
        return
    assert all(isinstance(actor, str) and actor.strip() for actor in chain)
    assert get_current_actor(claims) == (chain[0] if chain else None)


def test_a_very_deep_chain_does_not_recurse() -> None:
    actors = [f"actor-{i}" for i in range(5000)]

    assert get_delegation_chain(nest(actors)) == actors


# VerifiedToken --------------------------------------------------------------------------------


def test_scopes_join_the_scope_claim_and_rbac_permissions() -> None:
    verified = VerifiedToken(
        TOKEN,
        {"sub": "u", "scope": "read:data  write:data", "permissions": ["admin:data", 7]},
    )

    assert verified.scopes == frozenset({"read:data", "write:data", "admin:data"})


@pytest.mark.parametrize("separator", ["\u00a0", "\t", "\n", "\u2003", "\u3000", "\x1f"])
def test_only_a_space_separates_scopes(separator: str) -> None:
    """RFC 6749 §3.3: a scope string split on any other whitespace would grant scopes the
    tenant never issued (``"read:data<NBSP>admin"`` is one odd scope, not ``admin``)."""
    verified = VerifiedToken(TOKEN, {"sub": "u", "scope": f"read:data{separator}admin"})

    assert verified.scopes == frozenset({f"read:data{separator}admin"})


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters=" "), min_size=1), max_size=6),
    st.integers(min_value=1, max_value=3),
)
def test_scopes_are_the_space_separated_tokens(names: list[str], spaces: int) -> None:
    scope = (" " * spaces).join(names)

    assert VerifiedToken(TOKEN, {"sub": "u", "scope": f" {scope} "}).scopes == frozenset(names)


def test_a_token_without_scopes_has_none() -> None:
    assert VerifiedToken(TOKEN, {"sub": "u"}).scopes == frozenset()


def test_a_verified_token_exposes_its_delegation() -> None:
    verified = VerifiedToken(
        TOKEN, {**nest(["mcp", "agent"]), "exp": 1800000000}, scheme="DPoP", jkt="thumb"
    )

    assert verified.sub == "auth0|user123"
    assert verified.current_actor == "mcp"
    assert verified.delegation_chain == ["mcp", "agent"]
    assert verified.is_delegated
    assert verified.expires_at == 1800000000
    assert verified.scheme == "DPoP"
    assert verified.jkt == "thumb"


def test_an_undelegated_token_is_not_delegated() -> None:
    verified = VerifiedToken(TOKEN, {"sub": "u"})

    assert not verified.is_delegated
    assert verified.current_actor is None
    assert verified.delegation_chain == []


def test_repr_and_str_never_show_the_token() -> None:
    verified = VerifiedToken(TOKEN, {"sub": "auth0|user123"})
    user = Auth0User(verified)

    for text in (repr(verified), str(verified), repr(user), str(user)):
        assert TOKEN not in text
        assert "c2lnbmF0dXJl" not in text
    assert "auth0|user123" in repr(verified)


# Auth0User ------------------------------------------------------------------------------------


def test_auth0_user_duck_types_an_authenticated_django_user() -> None:
    user = Auth0User(VerifiedToken(TOKEN, {"sub": "auth0|user123", "org_id": "org_1"}))

    assert user.is_authenticated
    assert not user.is_anonymous
    assert user.is_active
    assert not user.is_staff
    assert not user.is_superuser
    assert user.pk == user.id == user.username == user.sub == "auth0|user123"
    assert user.get_username() == "auth0|user123"
    assert user.claims["org_id"] == "org_1"
    assert not user.has_perm("auth.add_user")
    assert not user.has_perms(["auth.add_user"])
    assert not user.has_module_perms("auth")
    assert user.get_all_permissions() == set()
    assert list(user.groups.all()) == []
    assert list(user.user_permissions.all()) == []


def test_auth0_users_are_equal_by_subject() -> None:
    first = Auth0User(VerifiedToken(TOKEN, {"sub": "a"}))
    again = Auth0User(VerifiedToken("other.token.value", {"sub": "a"}))
    other = Auth0User(VerifiedToken(TOKEN, {"sub": "b"}))

    assert first == again
    assert hash(first) == hash(again)
    assert first != other
    assert first != AnonymousUser()


def test_auth0_user_has_no_database_row() -> None:
    user = Auth0User(VerifiedToken(TOKEN, {"sub": "a"}))

    with pytest.raises(NotImplementedError):
        user.save()
    with pytest.raises(NotImplementedError):
        user.delete()

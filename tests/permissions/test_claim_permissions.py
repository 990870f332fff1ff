"""Claim-check permissions: any-of scopes, ``claim_equals``, ``claim_includes``, composed."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_auth0_obo.authentication import Auth0Authentication
from django_auth0_obo.permissions import (
    ClaimIncludes,
    HasAnyScope,
    HasScopes,
    claim_equals,
    claim_includes,
    scope_includes_any,
)
from django_auth0_obo.testing import REMOVE, LocalTenant

pytestmark = pytest.mark.django_db

factory = APIRequestFactory()


def view_for(permission: Any, **attrs: Any) -> Any:
    class View(APIView):
        authentication_classes = [Auth0Authentication]
        permission_classes = [permission]

        def get(self, request: Any) -> Response:
            return Response({"sub": request.user.sub})

    for key, value in attrs.items():
        setattr(View, key, value)
    return View.as_view()


def status_for(tenant: LocalTenant, permission: Any, claims: dict[str, Any], **attrs: Any) -> Any:
    token = tenant.mint(claims=claims)
    request = factory.get("/things", HTTP_AUTHORIZATION=f"Bearer {token}")
    return view_for(permission, **attrs)(request)


# -- any-of scopes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("read:data", True),
        ("write:data", True),
        ("read:data write:data", True),
        ("admin", False),
        ("", False),
        ("read:datax", False),
    ],
)
def test_has_any_scope(auth0_tenant: LocalTenant, scope: str, allowed: bool) -> None:
    response = status_for(
        auth0_tenant, HasAnyScope, {"scope": scope}, any_scopes=["read:data", "write:data"]
    )
    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert response.data["code"] == "insufficient_scope"
        assert 'scope="read:data write:data"' in response["WWW-Authenticate"]


def test_rbac_permissions_count_for_any_of(auth0_tenant: LocalTenant) -> None:
    claims = {"scope": REMOVE, "permissions": ["write:data"]}
    permission = scope_includes_any("read:data", "write:data")
    assert status_for(auth0_tenant, permission, claims).status_code == 200


def test_any_of_with_nothing_listed_is_a_configuration_error(auth0_tenant: LocalTenant) -> None:
    with pytest.raises(ImproperlyConfigured):
        status_for(auth0_tenant, HasAnyScope, {"scope": "read:data"})
    with pytest.raises(ValueError, match="at least one"):
        scope_includes_any()


# -- claim_equals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("why", "expected", "claims", "allowed"),
    [
        ("equal string", "org_1", {"org_id": "org_1"}, True),
        ("other string", "org_1", {"org_id": "org_2"}, False),
        ("missing claim", "org_1", {}, False),
        ("case differs", "org_1", {"org_id": "ORG_1"}, False),
        ("list holding the value is not equal", "org_1", {"org_id": ["org_1"]}, False),
        ("true", True, {"org_id": True}, True),
        ("1 is not true", True, {"org_id": 1}, False),
        ("true is not 1", 1, {"org_id": True}, False),
        ("int equals float", 1, {"org_id": 1.0}, True),
        ("string is not number", 1, {"org_id": "1"}, False),
        ("null equals null", None, {"org_id": None}, True),
        ("missing is not null", None, {}, False),
        ("object", "org_1", {"org_id": {"id": "org_1"}}, False),
    ],
)
def test_claim_equals(
    auth0_tenant: LocalTenant, why: str, expected: Any, claims: dict[str, Any], allowed: bool
) -> None:
    response = status_for(auth0_tenant, claim_equals("org_id", expected), claims)
    assert response.status_code == (200 if allowed else 403), why
    if not allowed:
        assert response.data["code"] == "claim_mismatch", why


# -- claim_includes ---------------------------------------------------------------------------

ROLES = "https://example.com/roles"  # Auth0 custom claims are namespaced URLs


@pytest.mark.parametrize(
    ("why", "value", "allowed"),
    [
        ("all present in a list", ["admin", "editor", "viewer"], True),
        ("one missing", ["admin"], False),
        ("space-separated string", "editor admin", True),
        ("several spaces between", " editor   admin ", True),
        ("only a space separates", "editor\u00a0admin", False),
        ("a tab does not separate", "editor\tadmin", False),
        ("string missing one", "admin", False),
        ("missing claim", REMOVE, False),
        ("a number", 7, False),
        ("null", None, False),
        ("an object", {"admin": True, "editor": True}, False),
        ("empty list", [], False),
        ("nested lists do not count", [["admin", "editor"]], False),
    ],
)
def test_claim_includes(auth0_tenant: LocalTenant, why: str, value: Any, allowed: bool) -> None:
    permission = claim_includes(ROLES, "admin", "editor")
    response = status_for(auth0_tenant, permission, {ROLES: value})
    assert response.status_code == (200 if allowed else 403), why


def test_factory_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one"):
        claim_includes("roles")
    with pytest.raises(ValueError, match="claim name"):
        claim_equals("", "x")
    with pytest.raises(TypeError):
        claim_equals("roles", ["admin"])  # type: ignore[arg-type]


# -- composition ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "allowed"),
    [
        ({"org_id": "org_1", "scope": "read:data"}, True),
        ({"org_id": "org_1", "scope": "write:data"}, False),
        ({"org_id": "org_2", "scope": "read:data"}, False),
        ({"org_id": "org_2", "scope": "read:data", "https://example.com/roles": ["admin"]}, True),
    ],
)
def test_compose_with_and_or(
    auth0_tenant: LocalTenant, claims: dict[str, Any], allowed: bool
) -> None:
    permission = (claim_equals("org_id", "org_1") & HasScopes) | claim_includes(ROLES, "admin")
    response = status_for(auth0_tenant, permission, claims, required_scopes=["read:data"])
    assert response.status_code == (200 if allowed else 403)


def test_compose_with_drf_permissions(auth0_tenant: LocalTenant) -> None:
    permission = IsAuthenticated & ~claim_equals("org_id", "blocked")
    assert status_for(auth0_tenant, permission, {"org_id": "ok"}).status_code == 200
    assert status_for(auth0_tenant, permission, {"org_id": "blocked"}).status_code == 403


def test_an_unauthenticated_request_is_denied() -> None:
    response = view_for(claim_equals("org_id", "org_1"))(factory.get("/things"))
    assert response.status_code in (401, 403)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=5))
def test_includes_never_raises_and_only_passes_with_every_value(value: Any) -> None:
    permission = claim_includes("roles", "admin", "editor")()
    assert isinstance(permission, ClaimIncludes)
    result = permission.check(value)
    if result:
        items = value.split() if isinstance(value, str) else value
        assert "admin" in items
        assert "editor" in items

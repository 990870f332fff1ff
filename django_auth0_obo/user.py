"""``Auth0User``: a stateless user built from a verified token (like simplejwt's ``TokenUser``).

It duck-types Django's user so ``IsAuthenticated`` and templates work without a database row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import models as auth_models
from django.db.models.manager import EmptyManager

if TYPE_CHECKING:
    from django_auth0_obo.verified import VerifiedToken


class Auth0User:
    """The token's subject; ``pk``, ``id``, ``username`` and ``sub`` are all the ``sub`` claim."""

    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True

    _groups = EmptyManager(auth_models.Group)
    _user_permissions = EmptyManager(auth_models.Permission)

    def __init__(self, token: VerifiedToken) -> None:
        self.token = token

    @property
    def sub(self) -> str:
        return self.token.sub

    pk = id = username = sub

    @property
    def claims(self) -> Any:
        return self.token.claims

    @property
    def groups(self) -> EmptyManager[auth_models.Group]:
        return self._groups

    @property
    def user_permissions(self) -> EmptyManager[auth_models.Permission]:
        return self._user_permissions

    def get_username(self) -> str:
        return self.sub

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Any, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False

    def save(self) -> None:
        raise NotImplementedError("Auth0User has no database row.")

    def delete(self) -> None:
        raise NotImplementedError("Auth0User has no database row.")

    def __str__(self) -> str:
        return self.sub

    def __repr__(self) -> str:
        return f"<Auth0User {self.sub!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Auth0User) and other.sub == self.sub

    def __hash__(self) -> int:
        return hash(self.sub)

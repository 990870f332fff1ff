"""Types for users' own code: ``request.auth`` as a ``VerifiedToken`` without casts, and the
exchange results as ``TypedDict``\\ s (so ``result["acess_token"]`` is a type error).

::

    from django_auth0_obo.typing import Auth0Request

    class Events(APIView):
        def get(self, request: Auth0Request) -> Response:
            token = request.auth            # VerifiedToken
            return Response({"user": token.sub, "actor": token.current_actor})

At run time ``Auth0Request`` *is* DRF's ``Request`` (DRF builds the request, this module does not
change it); only type checkers see the narrower ``auth`` and ``user``. Use it on views whose
authentication is ``Auth0Authentication`` and whose permissions refuse anonymous callers
(``IsAuthenticated``): that is what makes ``request.auth`` never None there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.request import Request

from django_auth0_obo.exchange import (
    ConnectionTokenResult,
    OnBehalfOfTokenResult,
    TokenExchangeResult,
)
from django_auth0_obo.user import Auth0User
from django_auth0_obo.verified import VerifiedToken

__all__ = [
    "Auth0Request",
    "Auth0User",
    "ConnectionTokenResult",
    "OnBehalfOfTokenResult",
    "TokenExchangeResult",
    "VerifiedToken",
]

if TYPE_CHECKING:

    class Auth0Request(Request):
        """A DRF ``Request`` authenticated by ``Auth0Authentication``."""

        @property
        def auth(self) -> VerifiedToken: ...

        @auth.setter
        def auth(self, value: Any) -> None: ...

        @property
        def user(self) -> Any:
            """An ``Auth0User``, or what ``USER_RESOLVER`` returns."""

        @user.setter
        def user(self, value: Any) -> None: ...

else:
    Auth0Request = Request

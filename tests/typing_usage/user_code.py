"""User code that ``make typecheck`` checks with mypy --strict (not a test module, never run).

It pins the typing contract: ``request.auth`` is a ``VerifiedToken`` without casts, exchange
results are ``TypedDict``\\ s. The ``type: ignore[...]`` lines are errors mypy MUST report: with
``warn_unused_ignores`` (part of --strict), an ignore that stops being needed fails the check.
"""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from django_auth0_obo.exchange import get_token_on_behalf_of
from django_auth0_obo.typing import Auth0Request, OnBehalfOfTokenResult, VerifiedToken


class Events(APIView):
    def get(self, request: Auth0Request) -> Response:
        token: VerifiedToken = request.auth  # no cast
        actor: str | None = token.current_actor
        result: OnBehalfOfTokenResult = token.on_behalf_of("https://calendar-api.example.com")
        access_token: str = result["access_token"]
        expires_in: int = result["expires_in"]
        return Response(
            {"user": token.sub, "actor": actor, "ok": bool(access_token), "in": expires_in}
        )


def typo_in_a_result_key(subject: str) -> object:
    result = get_token_on_behalf_of(subject, "https://calendar-api.example.com")
    return result["acess_token"]  # type: ignore[typeddict-item]


def wrong_type_for_a_result_field(subject: str) -> str:
    result = get_token_on_behalf_of(subject, "https://calendar-api.example.com")
    return result["expires_in"]  # type: ignore[return-value]


def auth_is_not_optional_on_an_auth0_request(request: Auth0Request) -> str:
    return request.auth.sub

"""drf-spectacular: the OpenAPI security schemes of ``Auth0Authentication``.

Imported by ``AppConfig.ready()`` only when drf-spectacular is installed; defining the class
registers it, so users write nothing. Each operation behind ``Auth0Authentication`` lists the
schemes the ``DPOP_MODE`` accepts — ``auth0Bearer`` (``Authorization: Bearer``) and ``auth0DPoP``
(``Authorization: DPoP`` with a ``DPoP`` proof header, RFC 9449) — as alternatives, each with the
view's ``required_scopes`` (what ``HasScopes`` demands; OpenAPI 3.1 allows scopes on any scheme,
and 3.0 tools read them as documentation).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from django_auth0_obo.conf import as_tuple, obo_settings, view_option

BEARER = "auth0Bearer"
DPOP = "auth0DPoP"


def accepted_schemes() -> list[str]:
    """The security scheme names the current ``DPOP_MODE`` accepts, Bearer first."""
    mode = obo_settings.DPOP_MODE
    names = []
    if mode != "required":
        names.append(BEARER)
    if mode != "disabled":
        names.append(DPOP)
    return names


class Auth0AuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Bearer and DPoP security schemes, with each view's required scopes."""

    target_class = "django_auth0_obo.authentication.Auth0Authentication"
    name = [BEARER, DPOP]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        algorithms = ", ".join(obo_settings.DPOP_ALGORITHMS)
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An Auth0 access token: `Authorization: Bearer <token>`.",
            },
            {
                "type": "http",
                "scheme": "dpop",  # RFC 9449 §7.1; OpenAPI allows bearerFormat on bearer only
                "description": (
                    "A DPoP-bound Auth0 access token (RFC 9449): `Authorization: DPoP <token>` "
                    f"and a `DPoP` proof header signed with the bound key ({algorithms})."
                ),
            },
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[str]]]:
        # The view's declared scopes, if any: a view without HasScopes declares none, and the
        # schema must not raise where only HasScopes itself refuses to grant.
        declared = as_tuple(view_option(auto_schema.view, "required_scopes"))
        scopes = [scope for item in declared for scope in item.split()]
        return [{name: scopes} for name in accepted_schemes()]

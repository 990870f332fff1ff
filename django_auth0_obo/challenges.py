"""``WWW-Authenticate`` challenges (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1).

All quoting and escaping happens here, so no caller can put an unescaped quote, a backslash, a
control character or an over-long text into a header.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict, Unpack

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from django_auth0_obo.conf import as_tuple, obo_settings
from django_auth0_obo.exceptions import AuthenticationError
from django_auth0_obo.metadata import resource_path

#: URL name of the RFC 9728 metadata view in ``django_auth0_obo.urls``.
METADATA_URL_NAME = "django_auth0_obo:oauth-protected-resource"
#: Its path form, ``/.well-known/oauth-protected-resource/<resource path>``.
METADATA_PATH_URL_NAME = "django_auth0_obo:oauth-protected-resource-path"

MAX_DESCRIPTION_LENGTH = 200


def quote(value: str) -> str:
    """Quote a parameter value: drop ``"``, ``\\`` and non-printable characters."""
    cleaned = "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F and ch not in '"\\')
    return f'"{cleaned[:MAX_DESCRIPTION_LENGTH]}"'


def challenge(scheme: str, params: Iterable[tuple[str, str | None]]) -> str:
    """One challenge: ``Scheme k="v", k2="v2"`` (parameters whose value is None are skipped)."""
    rendered = ", ".join(f"{key}={quote(value)}" for key, value in params if value is not None)
    return f"{scheme} {rendered}" if rendered else scheme


def authenticate_header(
    *,
    realm: str,
    dpop_mode: str,
    dpop_algorithms: Iterable[str],
    error: str | None = None,
    error_description: str | None = None,
    error_scheme: str | None = None,
    resource_metadata: str | None = None,
    scope: str | None = None,
) -> str:
    """The full header: a Bearer and/or a DPoP challenge, the error on the scheme it concerns.

    ``error`` is an RFC 6750 / RFC 9449 code; ``error_scheme`` the scheme it belongs to (None,
    or a scheme not offered: the first challenge).
    """
    challenges: list[str] = []
    offered = []
    if dpop_mode != "required":
        offered.append("Bearer")
    if dpop_mode != "disabled":
        offered.append("DPoP")
    if error is not None and error_scheme not in offered:
        error_scheme = offered[0]
    for scheme in offered:
        params: list[tuple[str, str | None]] = []
        if scheme == "Bearer":
            params.append(("realm", realm))
        else:
            params.append(("algs", " ".join(dpop_algorithms)))
        if error is not None and scheme == error_scheme:
            params.append(("error", error))
            params.append(("error_description", error_description))
        if scope:
            params.append(("scope", scope))
        if resource_metadata:
            params.append(("resource_metadata", resource_metadata))
        challenges.append(challenge(scheme, params))
    return ", ".join(challenges)


class ChallengeValues(TypedDict, total=False):
    """What a caller may say about a challenge; the settings supply the rest."""

    error: str | None
    error_description: str | None
    error_scheme: str | None
    scope: str | None
    #: Overrides DPOP_MODE, e.g. to challenge only the scheme the client used.
    dpop_mode: str | None


def challenge_values(
    error: AuthenticationError | None, *, scope: str | None = None
) -> ChallengeValues:
    """The plain values of a core error (if any) and ``scope``, for :func:`for_request` /
    :func:`from_settings` (``**challenge_values(error, scope=...)``)."""
    if error is None:
        return {"scope": scope}
    return {
        "error": error.error,
        "error_description": error.description,
        "error_scheme": error.scheme,
        "scope": scope,
    }


def for_request(request: HttpRequest, **values: Unpack[ChallengeValues]) -> str:
    """The header for a Django/DRF ``request``: :func:`from_settings` with the metadata URL on
    the request's own origin."""
    return from_settings(resource_metadata=resource_metadata_url(request), **values)


def from_settings(*, resource_metadata: str | None, **values: Unpack[ChallengeValues]) -> str:
    """The header with realm, DPoP mode and algorithms read from the settings, here only."""
    return authenticate_header(
        realm=obo_settings.REALM,
        dpop_mode=values.get("dpop_mode") or obo_settings.DPOP_MODE,
        dpop_algorithms=as_tuple(obo_settings.DPOP_ALGORITHMS),
        error=values.get("error"),
        error_description=values.get("error_description"),
        error_scheme=values.get("error_scheme"),
        resource_metadata=resource_metadata,
        scope=values.get("scope"),
    )


def metadata_path(resource: str | None = None) -> str | None:
    """The path of the protected resource metadata of ``resource`` (default RESOURCE), when
    this app's URLs are installed: the path form for a resource with a path, whose document
    carries exactly that ``resource`` (RFC 9728 §3.3: clients compare the two)."""
    path = resource_path(resource or obo_settings.resource or "")
    try:
        if path:
            return reverse(METADATA_PATH_URL_NAME, kwargs={"resource_path": path})
        return reverse(METADATA_URL_NAME)
    except NoReverseMatch:
        return None


def resource_metadata_url(request: HttpRequest) -> str | None:
    """Absolute URL of this API's protected resource metadata (:func:`metadata_path`) on the
    request's origin, when its URLs are installed."""
    path = metadata_path()
    return None if path is None else request.build_absolute_uri(path)


def challenge_scope(required: Iterable[str] | str | None) -> str | None:
    """``scope=`` of a 401 challenge (what MCP clients ask for at authorization): the required
    scopes when known, else SCOPES_SUPPORTED; None when neither names any."""
    scopes = [scope for item in as_tuple(required) for scope in item.split()]
    if not scopes:
        scopes = list(as_tuple(obo_settings.SCOPES_SUPPORTED))
    return " ".join(scopes) or None

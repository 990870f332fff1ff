"""OAuth 2.0 Protected Resource Metadata (RFC 9728), what MCP clients fetch to find the tenant.

The document is built from the settings alone (no request data but the path), so it is public,
cacheable and needs no authentication.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from django_auth0_obo import domains
from django_auth0_obo.conf import obo_settings

#: How long clients and proxies may cache the document, seconds.
CACHE_SECONDS = 3600

#: Optional RFC 9728 §2 members and the settings that fill them (omitted when unset).
OPTIONAL_FIELDS = (
    ("resource_name", "RESOURCE_NAME"),
    ("resource_documentation", "RESOURCE_DOCUMENTATION"),
    ("resource_policy_uri", "RESOURCE_POLICY_URI"),
    ("resource_tos_uri", "RESOURCE_TOS_URI"),
)


def build_metadata(
    resource: str | None = None, tenant_domains: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The RFC 9728 §2 document for ``resource`` (default: the RESOURCE setting)."""
    listed = obo_settings.domains if tenant_domains is None else tenant_domains
    document: dict[str, Any] = {
        "resource": resource or obo_settings.resource,
        "authorization_servers": [f"https://{domain}/" for domain in listed],
        "scopes_supported": list(obo_settings.SCOPES_SUPPORTED),
        "bearer_methods_supported": ["header"],
    }
    for field, setting in OPTIONAL_FIELDS:
        value = getattr(obo_settings, setting)
        if value:
            document[field] = value
    mode = obo_settings.DPOP_MODE
    if mode != "disabled":
        document["dpop_signing_alg_values_supported"] = list(obo_settings.DPOP_ALGORITHMS)
        document["dpop_bound_access_tokens_required"] = mode == "required"
    return document


def resource_path(resource: str) -> str:
    """The path of a resource identifier as the metadata URL carries it (RFC 9728 §3.1: the
    well-known segment goes between host and path), without slashes at either end; "" for a
    resource without a path."""
    return urlsplit(resource).path.strip("/")


def resource_for_path(path: str) -> str | None:
    """The configured resource whose URL path is ``path`` (RFC 9728 §3.1), if any: RESOURCE
    first, then the accepted audiences."""
    wanted = path.strip("/")
    candidates = [obo_settings.resource, *obo_settings.audiences]
    for candidate in candidates:
        if candidate and wanted and resource_path(candidate) == wanted:
            return candidate
    return None


@require_safe
def protected_resource_metadata(request: HttpRequest, resource_path: str = "") -> JsonResponse:
    """Serve ``/.well-known/oauth-protected-resource[/<path>]``."""
    if resource_path:
        resource = resource_for_path(resource_path)
        if resource is None:
            raise Http404("No protected resource at this path.")
    else:
        resource = None
    response = JsonResponse(build_metadata(resource, domains.resolve(request)))
    response["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    if domains.resolver() is not None:
        response["Vary"] = "Host"  # a DOMAINS resolver may answer per host
    response["Access-Control-Allow-Origin"] = "*"
    return response

"""The stand-in tenant for the project's own tests: its settings kept, only the tenant swapped.

A project's ``AUTH0_OBO`` says how its API behaves (``DPOP_MODE``, ``AUDIENCE``, ``AUDIT``...);
its tests must run with exactly that. What points at a real tenant is all that changes:
:func:`tenant_settings` swaps ``DOMAIN``/``DOMAINS`` and ``TLS_CA_BUNDLE`` for the stand-in's,
and uses the stand-in's client when the project names none (or teaches the stand-in the
project's own client). The pytest fixture ``auth0_tenant`` and :class:`Auth0TenantMixin` (for
Django's ``TestCase``) both go through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from django.test.utils import override_settings

    from django_auth0_obo.testing.tenant import LocalTenant


def _audiences(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def tenant_settings(tenant: LocalTenant, project: Mapping[str, Any] | None) -> dict[str, Any]:
    """The project's ``AUTH0_OBO`` pointed at ``tenant``; also prepares the tenant for it.

    ``AUDIT_SYNC`` is turned on unless the project set it (tests see audit rows at once).
    Kept: every key the project set, ``AUDIENCE`` included (``tenant.mint()`` then mints for its
    first audience). Replaced: ``DOMAIN`` (and ``DOMAINS`` dropped), ``TLS_CA_BUNDLE``. Client
    credentials: the stand-in's default OBO client (``mcp-server-client``, whose own API is
    ``https://mcp.example.com``) when the project sets no ``CLIENT_ID``; otherwise the project's
    client is registered in the stand-in for the project's first audience with the default
    client's grants, so exchanges work with the project's own credentials. Call again after
    ``tenant.reset()``.
    """
    from django_auth0_obo.testing import config

    conf: dict[str, Any] = dict(project or {})
    conf.pop("DOMAINS", None)
    conf["DOMAIN"] = tenant.domain
    conf["TLS_CA_BUNDLE"] = tenant.ca_bundle
    conf.setdefault("AUDIT_SYNC", True)  # a test sees its audit rows as soon as a request returns
    audiences = _audiences(conf.get("AUDIENCE")) or [tenant.default_audience]
    conf.setdefault("AUDIENCE", audiences[0])
    api = audiences[0]
    tenant.default_audience = api
    if api not in tenant.apis:
        tenant.add_api(api, ("read:data", "write:data"))
    default = tenant.clients[config.DEFAULT_CLIENT_ID]
    if conf.get("CLIENT_ID"):
        # The project's own client: teach it to the stand-in (its API, the default grants).
        registered = tenant.add_client(
            conf["CLIENT_ID"],
            conf.get("CLIENT_SECRET") or None,
            api=api,
            grants={audience: tuple(scopes) for audience, scopes in default.grants.items()},
        )
        conf["CLIENT_SECRET"] = registered.secret
    else:
        conf["CLIENT_ID"] = default.client_id
        conf["CLIENT_SECRET"] = default.secret
    return conf


class Auth0TenantMixin:
    """For ``django.test.TestCase`` (or ``SimpleTestCase``) subclasses: a running stand-in.

    ``self.auth0_tenant`` is a :class:`LocalTenant` started once for the class and reset before
    each test, with ``AUTH0_OBO`` pointed at it as :func:`tenant_settings` describes; what the
    app cached about the tenant is forgotten before and after each test::

        class CalendarTests(Auth0TenantMixin, TestCase):
            def test_alice_reads_her_calendar(self):
                token = self.auth0_tenant.mint(sub="auth0|alice", scope="calendar:read")
                response = self.client.get("/api/events", HTTP_AUTHORIZATION=f"Bearer {token}")
                self.assertEqual(response.status_code, 200)
    """

    auth0_tenant: ClassVar[LocalTenant]
    _auth0_settings: override_settings

    @classmethod
    def setUpClass(cls) -> None:
        from django_auth0_obo.testing.tenant import LocalTenant

        cls.auth0_tenant = LocalTenant().start()
        cls.addClassCleanup(cls.auth0_tenant.stop)  # type: ignore[attr-defined]
        super().setUpClass()  # type: ignore[misc]

    def setUp(self) -> None:
        from django.conf import settings
        from django.test.utils import override_settings

        super().setUp()  # type: ignore[misc]
        tenant = self.auth0_tenant
        tenant.reset()
        project = getattr(settings, "AUTH0_OBO", None)
        self._auth0_settings = override_settings(AUTH0_OBO=tenant_settings(tenant, project))
        self._auth0_settings.enable()
        self.addCleanup(self._auth0_settings.disable)  # type: ignore[attr-defined]
        forget_tenant(tenant)
        self.addCleanup(forget_tenant, tenant)  # type: ignore[attr-defined]


def forget_tenant(tenant: LocalTenant) -> None:
    """Drop what the app cached about ``tenant`` (keys, discovery, verified tokens) and nothing
    else, so a shared cache used by the project's tests is never flushed."""
    from django_auth0_obo import keys, token_cache, tokens

    keys.forget_issuer(tenant.issuer)
    tokens.clear_memo()
    token_cache.memo.clear()

"""The ``AUTH0_OBO`` settings namespace.

One lazily-read object, modelled on DRF's ``APISettings``: values come from ``settings.AUTH0_OBO``
with the defaults below, are cached on first use and are cleared in place when tests override the
setting, so modules may keep a reference to ``obo_settings`` but must never copy values out of it
at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

_T = TypeVar("_T")

SETTINGS_NAME = "AUTH0_OBO"

#: Clock skew tolerated on exp/nbf/iat of access tokens, in seconds.
DEFAULT_LEEWAY = 30

DEFAULTS: dict[str, Any] = {
    "DOMAIN": None,
    "DOMAINS": None,
    "AUDIENCE": None,
    "CLIENT_ID": None,
    "CLIENT_SECRET": None,
    "ALGORITHMS": ["RS256"],
    "LEEWAY": DEFAULT_LEEWAY,
    "REQUIRED_CLAIMS": [],
    "DPOP_MODE": "allowed",
    "DPOP_ALGORITHMS": ["ES256"],
    "DPOP_IAT_LEEWAY": 30,
    "DPOP_IAT_OFFSET": 300,
    "DPOP_NONCE": False,
    "ALLOWED_ACTORS": None,
    "REQUIRE_ACTOR_AZP_MATCH": True,
    "MAX_DELEGATION_DEPTH": 5,
    "CLIENT_AUTH_METHOD": "client_secret_post",
    "CLIENT_ASSERTION_KEY": None,
    "FORWARD_USER_IP": False,
    "HTTP_TIMEOUT": 10,
    "TLS_CA_BUNDLE": None,
    "USER_RESOLVER": None,
    "CACHE_ALIAS": "default",
    "JWKS_CACHE_TTL": 600,
    "JWKS_REFETCH_COOLDOWN": 30,
    "TOKEN_CACHE_REFRESH_MARGIN": 30,
    "TOKEN_ENCRYPTION_KEYS": None,
    "TOKEN_MEMO_TTL": 5,
    "RESOURCE": None,
    "SCOPES_SUPPORTED": [],
    "RESOURCE_NAME": None,
    "RESOURCE_DOCUMENTATION": None,
    "RESOURCE_POLICY_URI": None,
    "RESOURCE_TOS_URI": None,
    "REQUIRE_AT_JWT": False,
    "MAX_TOKEN_AGE": None,
    "DPOP_CLIENT_KEY": None,
    "AUDIT": "delegated",
    "AUDIT_RETENTION_DAYS": 90,
    "AUDIT_SYNC": False,
    "AUDIT_FLUSH_INTERVAL": 1.0,
    "AUDIT_BATCH_SIZE": 200,
    "AUDIT_MAX_BUFFERED": 50000,
    "REALM": "api",
}

#: Settings holding a dotted path, imported on access.
IMPORT_STRINGS = frozenset({"USER_RESOLVER"})

DPOP_MODES = ("disabled", "allowed", "required")
AUDIT_MODES = ("off", "delegated", "all")
CLIENT_AUTH_METHODS = ("client_secret_post", "client_secret_basic", "private_key_jwt")


class _Derived(Generic[_T]):
    """A value computed from the settings once per generation, then read as a plain attribute.

    Like ``functools.cached_property`` (a non-data descriptor: the first read stores the value in
    the instance ``__dict__``, which later reads find before the descriptor), and it records the
    name so :meth:`OboSettings.reload` drops it with the settings it came from. Issuers and
    audiences are read on every verification; a property call per read was measurable.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _Derived[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: Any, owner: type | None = None) -> _T | _Derived[_T]:
        if instance is None:
            return self
        value = self.compute(instance)
        instance.__dict__[self.name] = value
        instance._cached.add(self.name)
        return value


class OboSettings:
    """Attribute access to ``AUTH0_OBO`` with defaults; unknown keys fail loudly by name."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()
        self._user_settings: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user_settings is None:
            raw = getattr(settings, SETTINGS_NAME, None) or {}
            if not isinstance(raw, dict):
                raise ImproperlyConfigured(f"{SETTINGS_NAME} must be a dict.")
            unknown = sorted(set(raw) - set(self.defaults))
            if unknown:
                raise ImproperlyConfigured(
                    f"Unknown {SETTINGS_NAME} setting(s): {', '.join(unknown)}."
                )
            self._user_settings = raw
        return self._user_settings

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr not in self.defaults:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr in IMPORT_STRINGS and isinstance(value, str):
            value = import_string(value)
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    # Derived values, computed once per settings generation (see ``_Derived``).

    @_Derived
    def domains(self) -> tuple[str, ...]:
        """Accepted tenant domains; the first one is where tokens are exchanged."""
        return _domains(self)

    @_Derived
    def issuers(self) -> frozenset[str]:
        """Accepted ``iss`` values: ``https://<domain>/`` for each domain."""
        return frozenset(f"https://{d}/" for d in self.domains)

    @property
    def primary_domain(self) -> str:
        if not self.domains:
            raise ImproperlyConfigured(f"{SETTINGS_NAME} needs DOMAIN or DOMAINS.")
        return self.domains[0]

    @_Derived
    def audiences(self) -> tuple[str, ...]:
        """Accepted ``aud`` values for incoming tokens."""
        return as_tuple(self.AUDIENCE)

    @property
    def resource(self) -> str | None:
        """This API's resource identifier (RFC 9728): RESOURCE, else the first audience."""
        return self.RESOURCE or (self.audiences[0] if self.audiences else None)

    @property
    def tls_verify(self) -> str | bool:
        """The ``verify=`` argument for ``requests``: a CA bundle path or the system store."""
        return self.TLS_CA_BUNDLE or True

    def reload(self) -> None:
        """Forget cached values so the next access re-reads Django settings."""
        for attr in self._cached:
            self.__dict__.pop(attr, None)
        self._cached.clear()
        self._user_settings = None
        for callback in list(_reload_callbacks):
            callback()


def as_tuple(value: Any) -> tuple[str, ...]:
    """A setting or view attribute that may be one string or a list of strings, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _domains(s: OboSettings) -> tuple[str, ...]:
    if s.DOMAINS and not isinstance(s.DOMAINS, str):  # a str is a resolver (see .domains)
        return as_tuple(s.DOMAINS)
    return as_tuple(s.DOMAIN)


def view_option(view: Any, name: str) -> Any:
    """Per-view configuration, DRF style: ``view.get_<name>()`` when defined, else
    ``view.<name>``, else None (the caller then falls back to the setting)."""
    if view is None:
        return None
    getter = getattr(view, f"get_{name}", None)
    return getter() if callable(getter) else getattr(view, name, None)


_reload_callbacks: list[Any] = []


def on_reload(callback: Any) -> Any:
    """Register a callable run whenever ``AUTH0_OBO`` changes (clears per-process caches)."""
    _reload_callbacks.append(callback)
    return callback


obo_settings = OboSettings()


def reload_obo_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        obo_settings.reload()


setting_changed.connect(reload_obo_settings)

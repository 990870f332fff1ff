"""System checks for ``AUTH0_OBO`` (``manage.py check``), with stable ids ``auth0_obo.E0xx``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from django_auth0_obo.conf import (
    AUDIT_MODES,
    CLIENT_AUTH_METHODS,
    DEFAULTS,
    DPOP_MODES,
    SETTINGS_NAME,
    as_tuple,
)
from django_auth0_obo.domains import is_host_port as _is_host_port
from django_auth0_obo.dpop_key import parse_client_key
from django_auth0_obo.exceptions import ConfigurationError
from django_auth0_obo.jose import ASYMMETRIC_ALGORITHMS


def several_processes_likely() -> bool:
    """Whether this project probably serves from more than one process (what makes W001 matter).

    Not under ``DEBUG`` and not under ``manage.py runserver``: development serves from one
    process, where a per-process replay cache sees every proof. Everywhere else (gunicorn,
    uvicorn workers, ``manage.py check --deploy``, migrate in a deployment) assume several.
    """
    return not settings.DEBUG and sys.argv[1:2] != ["runserver"]


def _error(msg: str, id_: int, hint: str | None = None) -> Error:
    return Error(msg, hint=hint, obj=SETTINGS_NAME, id=f"auth0_obo.E{id_:03d}")


def _as_list(value: Any) -> list[Any]:
    return list(as_tuple(value))


def _is_asymmetric(alg: Any) -> bool:
    return isinstance(alg, str) and alg in ASYMMETRIC_ALGORITHMS


def _check_token_profile(conf: dict[str, Any]) -> list[CheckMessage]:
    """REQUIRE_AT_JWT (E017) and MAX_TOKEN_AGE (E018): the optional access-token rules."""
    errors: list[CheckMessage] = []
    if not isinstance(conf["REQUIRE_AT_JWT"], bool):
        errors.append(_error("REQUIRE_AT_JWT must be True or False.", 17))
    max_age = conf["MAX_TOKEN_AGE"]
    if max_age is not None and (
        isinstance(max_age, bool)
        or not isinstance(max_age, int | float)
        or not 0 < max_age < float("inf")
    ):
        errors.append(
            _error(
                "MAX_TOKEN_AGE must be None or a number of seconds greater than 0.",
                18,
                "None accepts a token of any age until its exp.",
            )
        )
    return errors


@register(Tags.security, "auth0_obo")
def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``AUTH0_OBO`` without touching the network."""
    raw = getattr(settings, SETTINGS_NAME, None)
    if raw is None:
        return [_error(f"{SETTINGS_NAME} is not set.", 1, "Set DOMAIN and AUDIENCE at least.")]
    if not isinstance(raw, dict):
        return [_error(f"{SETTINGS_NAME} must be a dict.", 1)]
    conf = {**DEFAULTS, **raw}
    errors: list[CheckMessage] = []

    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        errors.append(_error(f"Unknown {SETTINGS_NAME} key(s): {', '.join(unknown)}.", 8))

    domains_resolver = conf["DOMAINS"] if isinstance(conf["DOMAINS"], str) else None
    domains = [] if domains_resolver else _as_list(conf["DOMAINS"])
    domains = domains or _as_list(conf["DOMAIN"])
    if domains_resolver:
        errors.extend(_resolver_errors(domains_resolver))
    elif not domains:
        errors.append(_error("DOMAIN (or DOMAINS) is required.", 1))
    for domain in domains:
        if not _is_host_port(domain):
            errors.append(
                _error(
                    f"DOMAIN {domain!r} must be host[:port], without scheme or path.",
                    3,
                    "Write 'tenant.us.auth0.com', not 'https://tenant.us.auth0.com/'.",
                )
            )

    audiences = _as_list(conf["AUDIENCE"])
    if not audiences or not all(isinstance(a, str) and a for a in audiences):
        errors.append(_error("AUDIENCE is required (a string or a list of strings).", 2))

    if conf["DPOP_MODE"] not in DPOP_MODES:
        errors.append(_error(f"DPOP_MODE must be one of {', '.join(DPOP_MODES)}.", 4))

    bad_algs = [a for a in _as_list(conf["ALGORITHMS"]) if not _is_asymmetric(a)]
    if bad_algs or not conf["ALGORITHMS"]:
        errors.append(
            _error(
                f"ALGORITHMS may only name asymmetric JWS algorithms; refused: {bad_algs}.",
                5,
                "'none' and HMAC (HS256...) are never accepted for access tokens.",
            )
        )
    bad_dpop = [a for a in _as_list(conf["DPOP_ALGORITHMS"]) if not _is_asymmetric(a)]
    if bad_dpop or not conf["DPOP_ALGORITHMS"]:
        errors.append(
            _error(f"DPOP_ALGORITHMS may only name asymmetric algorithms; refused: {bad_dpop}.", 9)
        )

    errors.extend(_check_token_profile(conf))

    if conf["CLIENT_SECRET"] and not conf["CLIENT_ID"]:
        errors.append(_error("CLIENT_SECRET is set but CLIENT_ID is not.", 6))

    bundle = conf["TLS_CA_BUNDLE"]
    if bundle and not os.path.isfile(bundle):
        errors.append(_error(f"TLS_CA_BUNDLE {bundle!r} is not a file.", 7))

    if conf["CLIENT_AUTH_METHOD"] not in CLIENT_AUTH_METHODS:
        errors.append(
            _error(f"CLIENT_AUTH_METHOD must be one of {', '.join(CLIENT_AUTH_METHODS)}.", 10)
        )
    if conf["AUDIT"] not in AUDIT_MODES:
        errors.append(_error(f"AUDIT must be one of {', '.join(AUDIT_MODES)}.", 11))

    resolver = conf["USER_RESOLVER"]
    if isinstance(resolver, str):
        try:
            import_string(resolver)
        except ImportError:
            errors.append(_error(f"USER_RESOLVER {resolver!r} cannot be imported.", 12))

    if conf["CACHE_ALIAS"] not in settings.CACHES:
        errors.append(_error(f"CACHE_ALIAS {conf['CACHE_ALIAS']!r} is not in CACHES.", 13))

    if conf["DPOP_CLIENT_KEY"] is not None:
        try:
            parse_client_key(conf["DPOP_CLIENT_KEY"])
        except ConfigurationError as error:
            errors.append(
                _error(error.description, 15, "Give a PEM string or a JWK (dict or JSON string).")
            )

    errors.extend(_surface_errors(conf))

    if conf["TOKEN_ENCRYPTION_KEYS"] is not None:
        from django_auth0_obo.crypto import validate_keys

        try:
            validate_keys(conf["TOKEN_ENCRYPTION_KEYS"])
        except ValueError as error:
            errors.append(
                _error(
                    str(error),
                    16,
                    "Generate one with django_auth0_obo.crypto.generate_key(); prepend new keys "
                    "to rotate, keep old ones until their cached tokens have expired.",
                )
            )

    for key in (
        "LEEWAY",
        "DPOP_IAT_LEEWAY",
        "DPOP_IAT_OFFSET",
        "HTTP_TIMEOUT",
        "JWKS_CACHE_TTL",
        "JWKS_REFETCH_COOLDOWN",
        "TOKEN_CACHE_REFRESH_MARGIN",
        "AUDIT_RETENTION_DAYS",
        "MAX_DELEGATION_DEPTH",
        "TOKEN_MEMO_TTL",
        "AUDIT_FLUSH_INTERVAL",
        "AUDIT_BATCH_SIZE",
        "AUDIT_MAX_BUFFERED",
    ):
        value = conf[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(_error(f"{key} must be a number of at least 0.", 14))

    if conf["CACHE_ALIAS"] in settings.CACHES:
        backend = settings.CACHES[conf["CACHE_ALIAS"]].get("BACKEND", "")
        per_process = backend.endswith(("locmem.LocMemCache", "dummy.DummyCache"))
        if per_process and conf["DPOP_MODE"] != "disabled" and several_processes_likely():
            errors.append(
                Warning(
                    "DPoP replay detection uses a per-process cache: a proof replayed to another "
                    "worker process is not detected.",
                    hint="Point CACHE_ALIAS at a shared cache that keeps every record for its "
                    "window: Redis with maxmemory-policy noeviction (W005 names the others).",
                    obj=SETTINGS_NAME,
                    id="auth0_obo.W001",
                )
            )
        if conf["DPOP_MODE"] != "disabled":
            errors.extend(_evicting_replay_cache(settings.CACHES[conf["CACHE_ALIAS"]]))
    return errors


#: Django's cache backends that drop entries before they expire: the database and file caches
#: cull at MAX_ENTRIES (a third of them, by default), Memcached evicts the least recently used.
CULLING_BACKENDS = ("db.DatabaseCache", "filebased.FileBasedCache")
MEMCACHED_BACKENDS = "django.core.cache.backends.memcached."


def _evicting_replay_cache(cache: dict[str, Any]) -> list[CheckMessage]:
    """W005: DPoP replay records on a cache that can evict them before their window ends.

    An evicted record lets its proof be accepted again, and any client can fill the cache with
    records of its own proofs. LocMemCache is safe (its records stay in the process, see
    :mod:`.replay`) and so is Redis with ``maxmemory-policy noeviction``, which no check can read
    without connecting to it. A culling cache given a MAX_ENTRIES of at least what one process
    keeps in memory (``replay.MAX_LOCAL_RECORDS``) is taken as sized for the window.
    """
    from django_auth0_obo.replay import MAX_LOCAL_RECORDS

    backend = cache.get("BACKEND", "")
    if backend.startswith(MEMCACHED_BACKENDS):
        why = "Memcached evicts the least recently used items when it is full"
    elif backend.endswith(CULLING_BACKENDS):
        options = cache.get("OPTIONS") or {}
        max_entries = options.get("MAX_ENTRIES", 300)  # Django's default
        if isinstance(max_entries, int) and max_entries >= MAX_LOCAL_RECORDS:
            return []
        why = f"it culls entries once it holds MAX_ENTRIES ({max_entries})"
    else:
        return []
    return [
        _warning(
            "DPoP replay records can be evicted before their window ends: "
            f"{why}, so a client sending enough proofs of its own gets a captured proof "
            "accepted again.",
            5,
            "Point CACHE_ALIAS at Redis with maxmemory-policy noeviction, or at a dedicated "
            f"cache alias whose OPTIONS MAX_ENTRIES (at least {MAX_LOCAL_RECORDS}) is well "
            "above the proofs expected per window (DPOP_IAT_OFFSET + DPOP_IAT_LEEWAY seconds).",
        )
    ]


def _warning(msg: str, id_: int, hint: str | None = None) -> Warning:
    return Warning(msg, hint=hint, obj=SETTINGS_NAME, id=f"auth0_obo.W{id_:03d}")


@register("auth0_obo")
def check_performance(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Deployment settings that make the delegated path slow or weaken its guarantees."""
    from django.db import router

    from django_auth0_obo.models import ExchangedToken

    raw = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(raw, dict):
        return []  # check_settings reports it
    conf = {**DEFAULTS, **raw}
    warnings: list[CheckMessage] = []
    alias = router.db_for_write(ExchangedToken)
    database = settings.DATABASES.get(alias, {})
    if not settings.DEBUG and database.get("CONN_MAX_AGE", 0) == 0:
        warnings.append(
            _warning(
                f"Database {alias!r} (the exchanged-token cache and audit trail) has "
                "CONN_MAX_AGE=0: every request opens a new connection, which costs more than "
                "a cache hit.",
                2,
                "Set CONN_MAX_AGE (e.g. 600) and CONN_HEALTH_CHECKS=True on that database.",
            )
        )
    backend = settings.CACHES.get(conf["CACHE_ALIAS"], {}).get("BACKEND", "")
    if conf["TOKEN_MEMO_TTL"] and backend.endswith(("locmem.LocMemCache", "dummy.DummyCache")):
        warnings.append(
            _warning(
                "Revoking a cached exchanged token reaches other worker processes only after "
                f"TOKEN_MEMO_TTL ({conf['TOKEN_MEMO_TTL']} s): CACHE_ALIAS is per-process.",
                3,
                "Point CACHE_ALIAS at a shared cache (Redis, Memcached, database), or set "
                "TOKEN_MEMO_TTL to 0.",
            )
        )
    batch, bound, interval = (
        conf["AUDIT_BATCH_SIZE"],
        conf["AUDIT_MAX_BUFFERED"],
        conf["AUDIT_FLUSH_INTERVAL"],
    )
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (batch, bound, interval)
    )
    if numbers and not conf["AUDIT_SYNC"] and (batch < 1 or bound < batch or interval <= 0):
        warnings.append(
            _warning(
                "The audit buffer cannot work as configured: AUDIT_BATCH_SIZE must be at least "
                "1 and at most AUDIT_MAX_BUFFERED, and AUDIT_FLUSH_INTERVAL above 0.",
                4,
                "Keep the defaults (200 rows, 50000 rows, 1.0 s) unless you measured otherwise.",
            )
        )
    return warnings


#: Optional RFC 9728 metadata settings that must be absolute URLs.
RESOURCE_URL_SETTINGS = ("RESOURCE_DOCUMENTATION", "RESOURCE_POLICY_URI", "RESOURCE_TOS_URI")


@register(Tags.security, "auth0_obo")
def check_resource(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E030, E031: what the protected resource metadata publishes is usable by MCP clients.

    An MCP client asks the tenant for a token whose audience is the ``resource`` it found in the
    metadata (RFC 8707); if RESOURCE is not an accepted audience, every such token is refused.
    """
    raw = getattr(settings, SETTINGS_NAME, None)
    if not isinstance(raw, dict):
        return []
    errors: list[CheckMessage] = []
    resource = raw.get("RESOURCE")
    audiences = [a for a in _as_list(raw.get("AUDIENCE")) if isinstance(a, str)]
    if resource is not None and (not isinstance(resource, str) or resource not in audiences):
        errors.append(
            _error(
                f"RESOURCE {resource!r} is not one of the accepted audiences (AUDIENCE).",
                30,
                "MCP clients request tokens for RESOURCE: add it to AUDIENCE, or remove RESOURCE "
                "to publish the first audience.",
            )
        )
    for key in RESOURCE_URL_SETTINGS:
        value = raw.get(key)
        if value is not None and not (
            isinstance(value, str) and value.startswith(("https://", "http://"))
        ):
            errors.append(_error(f"{key} must be an absolute http(s) URL.", 31))
    name = raw.get("RESOURCE_NAME")
    if name is not None and not isinstance(name, str):
        errors.append(_error("RESOURCE_NAME must be a string.", 31))
    return errors


def _surface_errors(conf: dict[str, Any]) -> list[CheckMessage]:
    """private_key_jwt, DPoP nonces and per-request domains (ids E035-E044)."""
    from django_auth0_obo.client_assertion import parse_assertion_key

    errors: list[CheckMessage] = []
    if conf["CLIENT_ASSERTION_KEY"] is not None:
        try:
            parse_assertion_key(conf["CLIENT_ASSERTION_KEY"])
        except ConfigurationError as error:
            errors.append(
                _error(
                    error.description,
                    35,
                    "Give the PEM or private JWK of an RSA key of 2048 bits or more whose "
                    "public half is registered for this client in Auth0.",
                )
            )
    if conf["CLIENT_AUTH_METHOD"] == "private_key_jwt":
        if not conf["CLIENT_ASSERTION_KEY"]:
            errors.append(_error("private_key_jwt needs CLIENT_ASSERTION_KEY.", 36))
        if not conf["CLIENT_ID"]:
            errors.append(_error("private_key_jwt needs CLIENT_ID.", 37))
    if conf["DPOP_NONCE"] and NONCE_MIDDLEWARE not in getattr(settings, "MIDDLEWARE", ()):
        errors.append(
            _error(
                "DPOP_NONCE is on but clients are never told the nonce.",
                38,
                f"Add {NONCE_MIDDLEWARE!r} to MIDDLEWARE.",
            )
        )
    if conf["DPOP_NONCE"] and conf["DPOP_MODE"] == "disabled":
        errors.append(_error("DPOP_NONCE needs DPOP_MODE 'allowed' or 'required'.", 39))
    return errors


NONCE_MIDDLEWARE = "django_auth0_obo.middleware.DPoPNonceMiddleware"


def _resolver_errors(path: str) -> list[CheckMessage]:
    """DOMAINS given as the import string of a ``(request) -> domains`` callable."""
    try:
        target = import_string(path)
    except ImportError:
        return [_error(f"DOMAINS {path!r} cannot be imported.", 40)]
    if not callable(target):
        return [_error(f"DOMAINS {path!r} is not callable.", 41)]
    return []

"""Which tenant domains a request accepts, and which domain an exchange goes to.

Auth0 serves one tenant under its canonical domain and any number of custom domains, and stamps
each token's ``iss`` with the domain the token request used. ``DOMAINS`` is therefore either a
fixed list, or the import string of a callable ``(request) -> domains`` for projects where the
accepted domains depend on the request (one custom domain per customer, picked by host name).

- Tokens are verified against the issuers of the request being served
  (:func:`accepted_issuers`); outside a request, against the fixed ``DOMAIN``/``DOMAINS``. With a
  resolver and no fixed domain, nothing is accepted outside a request: fail closed.
- Keys are already kept per issuer (:mod:`.keys`), and exchange cache rows are keyed by the
  domain the exchange went to, so domains never share keys or exchanged tokens.
- An exchange goes to the domain that issued the subject token (:func:`exchange_domain`), the
  only domain whose token endpoint accepts that token; client credentials are only ever sent to a
  domain this project accepts, never to one a token merely names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished
from django.utils.module_loading import import_string

from django_auth0_obo import conf
from django_auth0_obo.conf import obo_settings

_request_issuers: ContextVar[frozenset[str] | None] = ContextVar(
    "django_auth0_obo_request_issuers", default=None
)
_resolvers: dict[str, Callable[[Any], Any]] = {}


@conf.on_reload
def _forget_resolver() -> None:
    _resolvers.clear()


def resolver() -> Callable[[Any], Any] | None:
    """The ``DOMAINS`` callable when ``DOMAINS`` is an import string, else None."""
    value = obo_settings.DOMAINS
    if not isinstance(value, str):
        return None
    try:
        return _resolvers[value]
    except KeyError:
        pass
    target: Callable[[Any], Any] = import_string(value)
    if not callable(target):
        raise ImproperlyConfigured(f"AUTH0_OBO DOMAINS {value!r} is not callable.")
    _resolvers[value] = target
    return target


def is_host_port(domain: Any) -> bool:
    """True for ``host`` or ``host:port`` with no scheme, path, credentials or spaces."""
    if not isinstance(domain, str) or not domain or any(c in domain for c in "/?#@ \\"):
        return False
    host, _, port = domain.rpartition(":") if ":" in domain else (domain, "", "")
    return bool(host) and (not port or port.isdigit())


def issuer_of(domain: str) -> str:
    return f"https://{domain}/"


def domain_of(issuer: str) -> str | None:
    """``host[:port]`` of an ``https://host[:port]/`` issuer, or None for anything else."""
    if not issuer.startswith("https://") or not issuer.endswith("/"):
        return None
    domain = issuer[len("https://") : -1]
    return domain if is_host_port(domain) else None


def resolve(request: Any) -> tuple[str, ...]:
    """The domains ``request`` accepts: the resolver's answer (invalid entries dropped), or the
    fixed domains when there is no resolver or it answers None."""
    function = resolver()
    if function is None:
        return obo_settings.domains
    answer = function(request)
    if answer is None:
        return obo_settings.domains
    values: Iterable[Any] = (answer,) if isinstance(answer, str) else answer
    return tuple(dict.fromkeys(d for d in values if is_host_port(d)))


def remember_request(request: Any) -> None:
    """Accept the issuers of ``request``'s domains until it finishes (no-op without resolver)."""
    if resolver() is not None:
        _request_issuers.set(frozenset(issuer_of(d) for d in resolve(request)))


@contextmanager
def for_request(request: Any) -> Iterator[None]:
    """Verify and exchange inside the block as ``request`` would (code outside DRF)."""
    issuers = frozenset(issuer_of(d) for d in resolve(request))
    token = _request_issuers.set(issuers)
    try:
        yield
    finally:
        _request_issuers.reset(token)


def accepted_issuers() -> frozenset[str]:
    """Issuers accepted now: the current request's, else the fixed settings'."""
    issuers = _request_issuers.get()
    return obo_settings.issuers if issuers is None else issuers


def exchange_domain(claims: Mapping[str, Any]) -> str:
    """Where to exchange a token with these claims: the domain of its ``iss`` when that issuer
    is accepted now, else the first fixed domain (which refuses a foreign token)."""
    iss = claims.get("iss")
    if isinstance(iss, str) and iss in accepted_issuers():
        domain = domain_of(iss)
        if domain is not None:
            return domain
    return obo_settings.primary_domain


def _forget(**kwargs: Any) -> None:
    _request_issuers.set(None)


request_finished.connect(_forget, dispatch_uid="django_auth0_obo.domains")

__all__ = [
    "accepted_issuers",
    "exchange_domain",
    "for_request",
    "is_host_port",
    "remember_request",
    "resolve",
    "resolver",
]

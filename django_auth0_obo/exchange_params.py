"""Checks on what callers pass to the exchange functions, all made before anything is sent.

The rules for Custom Token Exchange ``extra`` parameters are those of Auth0's Python SDK
(auth0-api-python ``ApiClient._apply_extra``): reserved OAuth parameter names are refused whatever
their case, so ``extra`` can never override the grant, the client's credentials, the subject, the
audience or the scope; values are strings (numbers and booleans are converted) or lists/tuples of
them, at most :data:`MAX_VALUES_PER_KEY` per key. One deliberate difference: ``organization`` is
allowed, because Auth0's Custom Token Exchange accepts it to issue organization-scoped tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Values allowed for one ``extra`` key (the SDK's DoS bound).
MAX_VALUES_PER_KEY = 20

#: Parameter names ``extra`` may not set (compared case-insensitively).
RESERVED_PARAMS = frozenset(
    {
        "grant_type",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "subject_token",
        "subject_token_type",
        "requested_token_type",
        "actor_token",
        "actor_token_type",
        "subject_issuer",
        "audience",
        "aud",
        "resource",
        "resources",
        "resource_indicator",
        "scope",
        "connection",
        "login_hint",
        "assertion",
    }
)


def check_subject_token(token: Any, name: str = "subject_token") -> str:
    """A raw token as the tenant expects it: a non-blank string, no padding, no scheme prefix."""
    if not isinstance(token, str) or not token.strip():
        raise ValueError(f"{name} must be a non-empty string.")
    if token != token.strip():
        raise ValueError(f"{name} must not have leading or trailing whitespace.")
    if token[:7].lower() in ("bearer ",) or token[:5].lower() == "dpop ":
        raise ValueError(f"{name} must be the bare token, without an authorization scheme.")
    return token


def check_required(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is required (a non-empty string).")
    return value


def check_optional(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None.")
    return value or None


def clean_scope(scope: Any) -> str | None:
    """The scope to send: space-separated, duplicates dropped in order; None when empty."""
    if scope is None:
        return None
    if not isinstance(scope, str):
        raise ValueError("scope must be a space-separated string or None.")
    return " ".join(dict.fromkeys(scope.split())) or None


def clean_extra(extra: Mapping[str, Any] | None) -> dict[str, str | list[str]]:
    """Validated ``extra`` form parameters, values as strings; ``ValueError`` names the culprit."""
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise ValueError("extra must be a mapping of parameter names to values.")
    cleaned: dict[str, str | list[str]] = {}
    for raw_key, value in extra.items():
        key = str(raw_key)
        if not key:
            raise ValueError("extra parameter names must not be empty.")
        if key.lower() in RESERVED_PARAMS:
            raise ValueError(f"Parameter {key!r} is reserved and cannot be set through extra.")
        if isinstance(value, list | tuple):
            if len(value) > MAX_VALUES_PER_KEY:
                raise ValueError(f"Parameter {key!r} has more than {MAX_VALUES_PER_KEY} values.")
            cleaned[key] = [_scalar(key, item) for item in value]
        else:
            cleaned[key] = _scalar(key, value)
    return cleaned


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise ValueError(
        f"Parameter {key!r} has unsupported type {type(value).__name__}: use a string, a number "
        "or a list of them."
    )

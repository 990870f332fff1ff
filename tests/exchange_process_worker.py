"""A separate Python process for the cross-process single-flight tests (not a test module):
``exchange`` (the sync function), ``aexchange N`` (N coroutines on one loop), ``migrate``, ``rows``.

DATABASES={"default": _database()},
CACHES=json.loads(os.environ.get("OBO_CACHE", LOCAL_CACHE)),
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

LOCAL_CACHE = '{"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}'


def _database() -> dict:
    """``OBO_DATABASE`` (any engine), else ``OBO_TEST_DB`` on the local PostgreSQL."""
    if "OBO_DATABASE" in os.environ:
        return json.loads(os.environ["OBO_DATABASE"])
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["OBO_TEST_DB"],
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "OPTIONS": {"connect_timeout": 2},
    }


def setup() -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="cross-process-single-flight-test-key",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
            "django_auth0_obo",
        ],
        DATABASES={"default": _database()},
        CACHES=json.loads(os.environ.get("OBO_CACHE", LOCAL_CACHE)),
        AUTH0_OBO=json.loads(os.environ["OBO_SETTINGS"]),
    )
    django.setup()


def exchange() -> dict:
    from django_auth0_obo import signals
    from django_auth0_obo.exchange import get_token_on_behalf_of

    seen: list[bool] = []
    signals.token_exchanged.connect(lambda sender, **kw: seen.append(kw["cache_hit"]), weak=False)
    print("ready", flush=True)
    sys.stdin.readline()
    result = get_token_on_behalf_of(
        os.environ["OBO_SUBJECT"], os.environ["OBO_AUDIENCE"], os.environ["OBO_SCOPE"]
    )
    digest = hashlib.sha256(result["access_token"].encode()).hexdigest()
    return {"token_sha256": digest, "cache_hit": seen[-1], "pid": os.getpid()}


def aexchange(callers: int) -> dict:
    """The async twin: ``callers`` coroutines on this process's loop ask at once, alternately
    with the raw token (``aget_token_on_behalf_of``) and as ``VerifiedToken.aon_behalf_of``."""
    import asyncio

    from django_auth0_obo import signals
    from django_auth0_obo.exchange import aget_token_on_behalf_of
    from django_auth0_obo.verification import averify

    subject, audience = os.environ["OBO_SUBJECT"], os.environ["OBO_AUDIENCE"]
    scope = os.environ["OBO_SCOPE"]
    seen: list[bool] = []
    signals.token_exchanged.connect(lambda sender, **kw: seen.append(kw["cache_hit"]), weak=False)

    async def together() -> list[dict]:
        verified = await averify(
            f"Bearer {subject}", method="GET", url=os.environ["OBO_RESOURCE_URL"]
        )
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        return await asyncio.gather(
            *(
                verified.aon_behalf_of(audience, scope)
                if i % 2
                else aget_token_on_behalf_of(subject, audience, scope)
                for i in range(callers)
            )
        )

    results = asyncio.run(together())
    digests = [hashlib.sha256(r["access_token"].encode()).hexdigest() for r in results]
    return {"token_sha256": digests, "cache_hits": seen, "pid": os.getpid()}


if __name__ == "__main__":
    setup()
    if sys.argv[1] == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    elif sys.argv[1] == "rows":
        from django_auth0_obo.models import ExchangedToken

        rows = ExchangedToken.objects.values_list("key", "encrypted_token")
        print(json.dumps([list(row) for row in rows]), flush=True)
    elif sys.argv[1] == "aexchange":
        print(json.dumps(aexchange(int(sys.argv[2]))), flush=True)
    else:
        print(json.dumps(exchange()), flush=True)

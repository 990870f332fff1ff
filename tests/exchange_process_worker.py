"""A separate Python process for the cross-process single-flight test (not a test module).

``python tests/exchange_process_worker.py migrate`` creates the tables in ``OBO_TEST_DB``;
``... exchange`` prints ``ready``, waits for a line on stdin, exchanges ``OBO_SUBJECT`` for
``OBO_AUDIENCE`` and prints one JSON line (a hash of the token, never the token itself).
Django is configured here, against PostgreSQL, whatever the parent's settings are (the cache:
``OBO_CACHE``, a JSON ``CACHES``, default local memory). ``perf_process_worker.py`` shares it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

LOCAL_CACHE = '{"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}'


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
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": os.environ["OBO_TEST_DB"],
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "OPTIONS": {"connect_timeout": 2},
            }
        },
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


if __name__ == "__main__":
    setup()
    if sys.argv[1] == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    else:
        print(json.dumps(exchange()), flush=True)

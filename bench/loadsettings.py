"""Settings of the example project as ``make loadtest`` serves it: ``testproject.settings`` plus the
bench views (``bench.loadviews``), production-like (DEBUG off, persistent connections).

``BENCH_AUTH0_OBO`` (JSON) overrides ``AUTH0_OBO`` keys, e.g. a long AUDIT_FLUSH_INTERVAL for the
test that stops a worker and counts what its exit wrote; ``BENCH_CACHE_PREFIX`` is the cache's
``KEY_PREFIX``.
"""

import json
import os

from testproject.settings import *  # noqa: F403
from testproject.settings import AUTH0_OBO, CACHES

DEBUG = False
ROOT_URLCONF = "bench.loadviews"
AUTH0_OBO = {**AUTH0_OBO, **json.loads(os.environ.get("BENCH_AUTH0_OBO", "{}"))}
# One run's keys on a shared Redis (django-environ lower-cases ?key_prefix= for this backend).
CACHES["default"]["KEY_PREFIX"] = os.environ.get("BENCH_CACHE_PREFIX", "")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_auth0_obo": {"handlers": ["console"], "level": "WARNING"}},
}

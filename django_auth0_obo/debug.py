"""An error-report filter that also hides the ``DPoP`` request header.

Django's ``SafeExceptionReporterFilter`` hides request headers whose names match its
``hidden_settings`` pattern: ``HTTP_AUTHORIZATION`` is hidden (``AUTH``) but ``HTTP_DPOP`` is not,
so a 500's report (the admins' mail) would show a request's DPoP proof. A proof is spent against
replay once accepted, but it is still a credential of its key's holder; set
``DEFAULT_EXCEPTION_REPORTER_FILTER = "django_auth0_obo.debug.SafeExceptionReporterFilter"``.
"""

from __future__ import annotations

import re

from django.views import debug


class SafeExceptionReporterFilter(debug.SafeExceptionReporterFilter):
    """Django's filter, with ``DPOP`` (the ``DPoP`` and ``DPoP-Nonce`` headers) among the names
    whose values are replaced by stars."""

    hidden_settings = re.compile(
        debug.SafeExceptionReporterFilter.hidden_settings.pattern + "|DPOP", flags=re.IGNORECASE
    )

"""Example project using django_auth0_obo, configured from the environment with django-environ.

Every value has a development default so ``manage.py check`` and the test suite run out of the
box; the demo and real deployments set the ``AUTH0_*`` variables (see ``.env.example``).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-example-key-change-me-0123456789abcdef")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_auth0_obo",
    "testproject.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "testproject.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Persistent, health-checked connections: opening one per request costs more than a cached
# exchange (system check auth0_obo.W002 warns when CONN_MAX_AGE is 0 outside DEBUG).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

AUTH0_OBO = {
    "DOMAIN": env("AUTH0_DOMAIN", default="example.us.auth0.com"),
    "AUDIENCE": env.list("AUTH0_AUDIENCE", default=["https://mcp.example.com"]),
    "CLIENT_ID": env("AUTH0_CLIENT_ID", default=None),
    "CLIENT_SECRET": env("AUTH0_CLIENT_SECRET", default=None),
    "TLS_CA_BUNDLE": env("AUTH0_TLS_CA_BUNDLE", default=None),
    "SCOPES_SUPPORTED": env.list(
        "AUTH0_SCOPES_SUPPORTED", default=["calendar:read", "calendar:write"]
    ),
    "RESOURCE": env("AUTH0_RESOURCE", default=None),
}
if "AUTH0_AUDIT_SYNC" in env:  # only when asked: the setting's default is buffered writes
    AUTH0_OBO["AUDIT_SYNC"] = env.bool("AUTH0_AUDIT_SYNC")

#: Base URL of the downstream calendar API the example MCP endpoint calls (default: this server).
DOWNSTREAM_CALENDAR_URL = env("DOWNSTREAM_CALENDAR_URL", default=None)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["django_auth0_obo.authentication.Auth0Authentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "django_auth0_obo.api_exceptions.exception_handler",
}

# Error reports (the admins' mail) hide the DPoP proof header too, not only Authorization.
DEFAULT_EXCEPTION_REPORTER_FILTER = "django_auth0_obo.debug.SafeExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_auth0_obo": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")}
    },
}

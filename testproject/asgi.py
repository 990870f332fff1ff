"""ASGI entry point for the example project: Django with the example MCP server next to it.

``uvicorn testproject.asgi:application`` serves Django and, at ``/mcp``, the MCP server of
``testproject.mcp_server`` (``MCP_PROTECT=1`` selects the ``protect`` path instead of the SDK's
``Auth0TokenVerifier``). Without the ``mcp`` extra installed, it serves Django alone.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

try:
    import mcp  # noqa: F401
except ImportError:  # the mcp extra is optional
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
else:
    import django

    django.setup()
    from testproject.mcp_server import build_application

    application = build_application(protected=os.environ.get("MCP_PROTECT") == "1")

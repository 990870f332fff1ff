"""Auth0 access tokens (Bearer and DPoP) for Django REST framework, and on-behalf-of exchange."""

from typing import TYPE_CHECKING, Any

from django_auth0_obo.act import get_current_actor, get_delegation_chain

if TYPE_CHECKING:
    from django_auth0_obo.verification import averify, verify

__all__ = ["averify", "get_current_actor", "get_delegation_chain", "verify"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``verify``/``averify`` are imported on first use: they need Django's settings and URLs."""
    if name in ("verify", "averify"):
        from django_auth0_obo import verification

        return getattr(verification, name)
    raise AttributeError(f"module 'django_auth0_obo' has no attribute {name!r}")

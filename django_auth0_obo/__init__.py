"""Auth0 access tokens (Bearer and DPoP) for Django REST framework, and on-behalf-of exchange."""

from django_auth0_obo.act import get_current_actor, get_delegation_chain

__all__ = ["get_current_actor", "get_delegation_chain"]
__version__ = "0.1.0"

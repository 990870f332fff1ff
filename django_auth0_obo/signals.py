"""Signals for metering and monitoring; receivers never see a raw token."""

from django.dispatch import Signal

#: Sent after a request's credentials were verified: ``request``, ``token`` (VerifiedToken).
token_verified = Signal()

#: Sent when ``AllowedActors`` refuses a request (sender ``AllowedActors``): ``request`` (DRF
#: Request), ``actor`` (current actor, or None for a direct token) and ``reason``, one of
#: ``actor_not_allowed``, ``direct_token_not_allowed``, ``actor_azp_mismatch``,
#: ``delegation_too_deep``.
actor_denied = Signal()

#: Sent after every exchange: ``audience``, ``scope``, ``subject``, ``cache_hit``, ``grant``.
token_exchanged = Signal()

"""Signals for metering and monitoring; receivers never see a raw token."""

from django.dispatch import Signal

#: Sent after a request's credentials were verified: ``request``, ``token`` (VerifiedToken).
token_verified = Signal()

#: Sent when ``AllowedActors`` refuses a request: ``request``, ``actor``, ``reason``.
actor_denied = Signal()

#: Sent after every exchange: ``audience``, ``scope``, ``subject``, ``cache_hit``, ``grant``.
token_exchanged = Signal()

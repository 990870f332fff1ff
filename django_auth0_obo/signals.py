"""Signals for metering and monitoring; receivers never see a raw token."""

from django.dispatch import Signal

#: Sent after a request's credentials were verified: ``request``, ``token`` (VerifiedToken).
token_verified = Signal()

#: Sent when ``AllowedActors`` refuses a request (sender ``AllowedActors``): ``request`` (DRF
#: Request), ``actor`` (current actor, or None for a direct token) and ``reason``, one of
#: ``actor_not_allowed``, ``direct_token_not_allowed``, ``actor_azp_mismatch``,
#: ``delegation_too_deep``.
actor_denied = Signal()

#: Sent after every successful exchange call, cache hits included (sender: the public function
#: called, e.g. ``exchange.get_token_on_behalf_of``). Keyword arguments:
#: ``grant`` ("on_behalf_of", "custom_token_exchange" or "token_vault"); ``subject`` (the
#: subject token's ``sub`` when known, else None; unverified when ``claims`` is None);
#: ``audience`` (the target audience; the connection name for Token Vault; None when the
#: profile chose); ``connection`` (Token Vault only, else None); ``requested_scope`` and
#: ``granted_scope`` (space-separated or None); ``cache_hit`` (True when the tenant was not
#: called: a cached token, or one fetched by a concurrent identical call); ``token_type``
#: ("Bearer", "DPoP" or None); ``expires_at`` (epoch seconds); ``claims`` (the subject token's
#: verified claims when a VerifiedToken was exchanged, else None); ``subject_audience`` (the
#: audience the subject token was verified for, else None). Never a token.
token_exchanged = Signal()

#: Sent when an exchange call fails with ``TokenExchangeError`` (never for argument or
#: configuration errors raised before any call): ``grant``, ``subject``, ``audience``,
#: ``connection``, ``requested_scope``, ``claims``, ``subject_audience`` as for
#: ``token_exchanged``, plus ``error`` and ``error_description`` (the tenant's words) and
#: ``status_code``.
exchange_failed = Signal()

#: Sent when a batch of audit rows could not be written (sender ``audit_buffer.AuditBuffer``):
#: ``error`` (the exception) and ``rows`` (the field dicts: claims and request metadata, never a
#: token). The rows stay buffered for the next flush; the failure is also logged at ERROR and
#: the request itself goes on.
audit_write_failed = Signal()

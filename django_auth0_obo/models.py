"""Database models: the exchanged-token cache and the delegation audit trail.

No raw token is ever stored: cache rows are looked up by a SHA-256 key and hold the issued token
encrypted; audit rows hold claims that identify who acted for whom, never a credential.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ExchangedToken(models.Model):
    """A cached result of a token exchange, served until ``cached_until`` minus the refresh margin.

    ``key`` is a SHA-256 over everything that makes two requests identical (grant, subject token,
    audience, scope set, client id, DPoP key, ...); the issued access token is kept only in
    ``encrypted_token`` (Fernet). A row whose ``encrypted_token`` is empty is a *lease*
    (``token_cache.CacheRow.is_lease``): another thread or process is asking the tenant right
    now, and ``cached_until`` is when its claim lapses. ID and refresh tokens are never stored.
    """

    key = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the request.")
    grant = models.CharField(max_length=32, default="on_behalf_of")
    subject = models.CharField(max_length=255, db_index=True)
    actor = models.CharField(max_length=255, blank=True)
    audience = models.CharField(max_length=255, db_index=True)
    scope = models.TextField(blank=True)
    org_id = models.CharField(max_length=255, blank=True)
    token_type = models.CharField(max_length=32, blank=True)
    issued_token_type = models.CharField(max_length=255, blank=True)
    encrypted_token = models.TextField(editable=False, blank=True)
    expires_at = models.DateTimeField(help_text="When the issued token expires.")
    cached_until = models.DateTimeField(
        db_index=True,
        help_text="When the row stops being served: the issued token's or the subject token's "
        "expiry, whichever is first (for a lease: when the lease lapses).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    hit_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "exchanged token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subject} → {self.audience}"


class DelegationEvent(models.Model):
    """One audited request or exchange: who acted for whom, on which API, and the outcome."""

    class Kind(models.TextChoices):
        REQUEST = "request", "request"
        EXCHANGE = "exchange", "exchange"

    class Outcome(models.TextChoices):
        ALLOWED = "allowed", "allowed"
        DENIED = "denied", "denied"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REQUEST)
    grant = models.CharField(max_length=32, blank=True, help_text="Exchange grant, for exchanges.")
    subject = models.CharField(max_length=255)
    current_actor = models.CharField(max_length=255, blank=True)
    delegation_chain = models.JSONField(default=list, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    azp = models.CharField(max_length=255, blank=True)
    org_id = models.CharField(max_length=255, blank=True)
    audience = models.CharField(max_length=255, blank=True)
    scopes = models.TextField(blank=True)
    method = models.CharField(max_length=16, blank=True)
    path = models.CharField(max_length=2048, blank=True)
    view_name = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=64, blank=True)
    jkt = models.CharField(max_length=64, blank=True)
    jti = models.CharField(max_length=255, blank=True)
    target_audience = models.CharField(max_length=255, blank=True)
    requested_scope = models.TextField(blank=True)
    granted_scope = models.TextField(blank=True)
    cache_hit = models.BooleanField(null=True)
    upstream_error = models.CharField(max_length=64, blank=True)
    actor_client_id = models.CharField(
        max_length=255, blank=True, help_text="The current actor's client (act.client_id)."
    )
    actor_profile = models.CharField(
        max_length=64, blank=True, help_text="The current actor's profile (act.sub_profile)."
    )
    subject_verified = models.BooleanField(
        default=True, help_text="False when the subject was read from a token not verified here."
    )
    count = models.PositiveIntegerField(
        default=1, help_text="How many identical events this row stands for."
    )
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="The last of the aggregated events (count > 1)."
    )

    class Meta:
        verbose_name = "delegation event"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["outcome", "-created_at"], name="auth0obo_evt_outcome"),
            models.Index(fields=["current_actor", "-created_at"], name="auth0obo_evt_actor"),
            models.Index(fields=["audience", "-created_at"], name="auth0obo_evt_audience"),
            models.Index(fields=["subject", "-created_at"], name="auth0obo_evt_subject"),
            models.Index(fields=["kind", "-created_at"], name="auth0obo_evt_kind"),
            # Covering indexes for the delegation overview's GROUP BY queries (admin/overview.py):
            # read without touching the wide rows. At most two long text columns each would be
            # attacker-sized, so an entry stays under PostgreSQL's btree limit.
            models.Index(
                fields=[
                    "current_actor",
                    "created_at",
                    "outcome",
                    "reason",
                    "count",
                    "last_seen_at",
                    "audience",
                    "target_audience",
                ],
                name="auth0obo_evt_ovw_actor",
            ),
            models.Index(
                fields=["current_actor", "subject", "created_at", "count"],
                name="auth0obo_evt_ovw_users",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome}: {self.subject} via {self.current_actor or '-'}"

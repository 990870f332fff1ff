"""``manage.py auth0_obo_purge``: delete expired cached tokens and audit rows past retention."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_auth0_obo.audit import purge_old_events
from django_auth0_obo.conf import obo_settings


class Command(BaseCommand):
    help = (
        "Delete expired exchanged tokens and delegation events older than "
        "AUTH0_OBO['AUDIT_RETENTION_DAYS'], in batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Rows deleted per query (default 1000)."
        )

    def handle(
        self, *args: Any, dry_run: bool = False, batch_size: int = 1000, **options: Any
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        from django_auth0_obo.token_cache import purge_expired_tokens

        verb = "Would delete" if dry_run else "Deleted"
        tokens = purge_expired_tokens(batch_size=batch_size, dry_run=dry_run)
        self.stdout.write(f"{verb} {tokens} expired exchanged token(s).")
        days = obo_settings.AUDIT_RETENTION_DAYS
        events = purge_old_events(days=days, batch_size=batch_size, dry_run=dry_run)
        self.stdout.write(f"{verb} {events} delegation event(s) older than {days} day(s).")

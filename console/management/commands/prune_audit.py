"""Remove audit rows older than AUDIT_RETENTION_DAYS, and django-axes' login records of the same
age (every login leaves one); the pruning itself is audited."""

from __future__ import annotations

from datetime import timedelta

from axes.models import AccessFailureLog, AccessLog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from console.choices import AuditResult, ConsoleAction
from console.models import AuditEvent
from console.operations import SYSTEM, audit


class Command(BaseCommand):
    help = "Apply the audit retention (run it daily, e.g. from cron)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=settings.AUDIT_RETENTION_DAYS)

    def handle(self, *args, days: int, **options) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1")
        cutoff = timezone.now() - timedelta(days=days)
        with transaction.atomic():
            removed = AuditEvent.objects.prune_older_than(cutoff)
            logins = AccessLog.objects.filter(attempt_time__lt=cutoff).delete()[0]
            failures = AccessFailureLog.objects.filter(attempt_time__lt=cutoff).delete()[0]
            audit(
                actor=None,
                ctx=SYSTEM,
                action=ConsoleAction.AUDIT_PRUNE,
                result=AuditResult.SUCCEEDED,
                target="audit log",
                params={"retention_days": days, "cutoff": cutoff.isoformat()},
                after={"removed": removed, "login_records_removed": logins + failures},
            )
        if connection.vendor == "sqlite":
            # Fresh statistics for SQLite's planner (PostgreSQL's autovacuum keeps its own): without
            # them it reads a viewer's audit page by merging two indexes and sorting every match
            # instead of walking the time index (1.0 s vs 0.45 s at 100,000 rows, bench/audit_export.py).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        self.stdout.write(
            f"removed {removed} audit event(s) and {logins + failures} login record(s) "
            f"older than {cutoff:%Y-%m-%d %H:%M}"
        )

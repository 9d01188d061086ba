from __future__ import annotations

from django.db import models


class OperationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (OperationStatus.PENDING, OperationStatus.RUNNING)
TERMINAL_STATUSES = (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.CANCELLED)


class AuditResult(models.TextChoices):
    # The request was accepted and an operation queued; its outcome is on the operation.
    ACCEPTED = "accepted", "Accepted"
    # The change was made in the request itself (no host command involved).
    SUCCEEDED = "succeeded", "Succeeded"
    # Refused before anything ran: bad input, busy target, not allowed.
    REFUSED = "refused", "Refused"
    FAILED = "failed", "Failed"

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


class ConsoleAction(models.TextChoices):
    """Audit actions of console-level changes, made in the request itself (no operation)."""

    TEAM = "team", "team page"
    TEAM_CREATE = "team.create", "create a team"
    TEAM_DELETE = "team.delete", "delete a team"
    TEAM_MEMBER_ADD = "team.member.add", "add a member"
    TEAM_MEMBER_REMOVE = "team.member.remove", "remove a member"
    TEAM_ROLE_GRANT = "team.role.grant", "grant a role"
    TEAM_ROLE_REVOKE = "team.role.revoke", "revoke a role"
    HOST_UPDATE = "host.update", "edit a host"
    HOST_ADD = "host.add", "add a host"
    HOST_ENROL_TOKEN = "host.enrol.token", "issue an enrolment token"
    HOST_ENROL = "host.enrol", "an agent enrolled"
    HOST_REVOKE = "host.revoke", "revoke a host's credentials"
    OPERATION_CANCEL = "operation.cancel", "cancel an operation"
    ACCOUNT_TOTP_START = "account.totp.start", "start two-factor setup"
    ACCOUNT_TOTP_ENABLE = "account.totp.enable", "enable two-factor"
    ACCOUNT_TOTP_DISABLE = "account.totp.disable", "disable two-factor"
    ACCOUNT_PASSWORD_CHANGE = "account.password.change", "change password"
    AUDIT_PRUNE = "audit.prune", "prune the audit trail"
    # Written by an agent: a broker message or an operation row it would not run (forged,
    # replayed, another host's, signature not verifying).
    AGENT_MESSAGE_REFUSED = "agent.message.refused", "agent refused a message"
    AGENT_OPERATION_REFUSED = "agent.operation.refused", "agent refused an operation"

"""Core models: managed hosts, long operations and the append-only audit trail."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from console.choices import ACTIVE_STATUSES, TERMINAL_STATUSES, AuditResult, OperationStatus
from console.input_guard import storable

logger = logging.getLogger(__name__)


class Host(models.Model):
    """A machine managed by the console; its agent consumes the queue ``host.<slug>``."""

    host_field = "pk"  # for console.access.for_user

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=255, blank=True)
    libvirt_uri = models.CharField(max_length=255, default="lxc:///")
    lxc_path = models.CharField(max_length=4096, default="/var/lib/lxc")
    # LXC paths besides the default one (pools, other stores): list of absolute paths.
    extra_lxc_paths = models.JSONField(default=list, blank=True)
    agent_name = models.CharField(max_length=255, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    # Detected by the agent: {"lxc": {...}, "libvirt": {...}, "btrfs": {...}, ...}
    capabilities = models.JSONField(default=dict, blank=True)
    capabilities_detected_at = models.DateTimeField(null=True, blank=True)
    last_inventory_sync = models.DateTimeField(null=True, blank=True)
    # /proc/sys/kernel/random/boot_id of the boot whose autostart the agent already ran.
    autostart_boot_id = models.CharField(max_length=64, blank=True)
    # Host directories an admin allows to bind-mount into containers (lxc.mount.entry).
    mount_roots = models.JSONField(default=list, blank=True)
    # Enrolment (console.enrolment): when its agent last exchanged a token for its credentials,
    # and when an admin revoked them (its Redis user and PostgreSQL role then refuse it).
    enrolled_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The generation of its signing key (console.signing): one more at each enrolment.
    key_generation = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def queue_name(self) -> str:
        return f"host.{self.slug}"

    @property
    def lxc_paths(self) -> list[str]:
        return [self.lxc_path, *[p for p in self.extra_lxc_paths if p != self.lxc_path]]

    @property
    def agent_online(self) -> bool:
        if self.last_heartbeat is None:
            return False
        age = timezone.now() - self.last_heartbeat
        return age < timedelta(seconds=settings.AGENT_OFFLINE_AFTER_SECONDS)

    @property
    def dead_at(self) -> Any:
        """When a host whose agent stays offline counts as dead (``HOST_DEAD_AFTER_SECONDS`` after
        its last heartbeat): its running operations are then recorded as failed (console.hostwatch)."""
        if self.last_heartbeat is None:
            return None
        return self.last_heartbeat + timedelta(seconds=settings.HOST_DEAD_AFTER_SECONDS)


class OperationQuerySet(models.QuerySet["Operation"]):
    def active(self, lock_key: str) -> Operation | None:
        """The pending or running operation that holds ``lock_key``, if any."""
        return self.filter(lock_key=lock_key, status__in=ACTIVE_STATUSES).first()

    def newest_of_kinds(self, kinds: list[str], count: int = 10) -> list[Operation]:
        """The ``count`` newest operations of these kinds (the storage and networks pages' boxes).

        One query per kind, each reading its newest rows from the (kind, newest first) index, then
        the rows: the planner, given ``kind IN (...)``, walked the whole table newest first
        whenever those kinds were rare (20 ms at 20,000 operations with no storage operation)."""
        keys: list[int] = []
        for kind in kinds:
            keys += self.filter(kind=kind).order_by("-created_at", "-id").values_list("pk", flat=True)[:count]
        return list(
            self.model.objects.filter(pk__in=keys).select_related("host", "actor").defer("log")[:count]
        )

    def claimable(self, host: Host) -> OperationQuerySet:
        """``host``'s pending operations, oldest first: what its agent claims from the database."""
        return self.filter(host=host, status=OperationStatus.PENDING).order_by("created_at", "id")

    def host_dead_unchecked(self, host: Host) -> OperationQuerySet:
        """Operations of ``host`` recorded as failed while it was known dead
        (:meth:`Operation.fail_host_dead`) that no agent of it has checked since: the agent checks
        them when it starts (``console.recovery``)."""
        return (
            self.filter(host=host, status=OperationStatus.FAILED, result__has_key="host_dead")
            .exclude(result__host_dead__has_key="checked")
            .order_by("started_at", "id")
        )

    def orphaned(self, host: Host, before: Any) -> OperationQuerySet:
        """Operations of ``host`` that an earlier life of its agent (one that claimed them before
        ``before``) left running: the agent adopts them when it starts."""
        return self.filter(
            Q(started_at__lt=before) | Q(started_at__isnull=True), host=host, status=OperationStatus.RUNNING
        ).order_by("started_at", "id")


class Operation(models.Model):
    """A job run by a host's agent: lifecycle actions, creates, snapshots, attaches.

    It owns its life (as NetBox's ``Job`` does): :meth:`enqueue`, :meth:`claim`,
    :meth:`set_progress`, :meth:`append_log`, :meth:`record_command`, :meth:`finish`.
    """

    kind = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="operations")
    # Human-readable target ("container local/web1") and the lock key that keeps one
    # active operation per target ("container:local:web1").
    target = models.CharField(max_length=255)
    lock_key = models.CharField(max_length=255)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=OperationStatus.choices, default=OperationStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_label = models.CharField(max_length=255, blank=True)
    log = models.TextField(blank=True)
    # Every command run, in order: [{"argv": [...], "exit": 0, "seconds": 0.3}]
    commands = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    # The id its wake-up message is sent with (written with the row; emptied if it could not be sent).
    celery_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    # The host command running now, so that an agent that restarts finds it (console.recovery):
    # {"pgid", "start_ticks", "boot_id", "argv", "exit_file", "since"}; null between commands.
    process = models.JSONField(null=True, blank=True)
    # Who asked to cancel it while it ran: its runner ends the running command and it ends
    # "cancelled" (console.runner); empty when nobody did.
    cancel_requested_by = models.CharField(max_length=150, blank=True)
    # HMAC of what the agent runs, under its host's key (console.signing): an agent runs only an
    # operation whose signature verifies.
    signature = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The database itself enforces one pending/running operation per target.
            models.UniqueConstraint(
                fields=["lock_key"],
                condition=Q(status__in=["pending", "running"]),
                name="one_active_operation_per_target",
            )
        ]
        indexes = [
            models.Index(fields=["host", "status"]),
            models.Index(fields=["lock_key"]),
            # The Operations list and the recent-operations boxes read newest first: an index in
            # that order lets a page read its rows without sorting the whole table.
            models.Index(fields=["-created_at", "-id"], name="operation_newest_first"),
            models.Index(fields=["host", "-created_at", "-id"], name="operation_host_newest"),
            models.Index(fields=["kind", "-created_at", "-id"], name="operation_kind_newest"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.target}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def equivalent_commands(self) -> list[str]:
        import shlex

        return [shlex.join(c["argv"]) for c in self.commands]

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    # --- its life: every state change of an operation is one of these methods -------------------
    # Each writes only its own columns with an UPDATE (the runner's log writer and the handler
    # write the same row at the same time) and keeps this object in step.

    def enqueue(self) -> None:
        """Wake its host's agent up through the broker; a broker that cannot be reached only delays
        it (the agent also claims pending operations from the database).

        Sent by task name: the web side needs no import of the agent's task code."""
        from console.celery import app

        if not self.host.agent_online:
            seen = self.host.last_heartbeat
            self.append_log(
                f"# {timezone.localtime():%H:%M:%S} no agent for {self.host.slug} is running"
                + (f" (last heartbeat {timezone.localtime(seen):%Y-%m-%d %H:%M:%S})" if seen else "")
                + ": this operation waits in the queue until its agent starts; cancel it if it should "
                "not run then\n"
            )
        try:
            # Sent with the id written with the row (start_operation): no write after the send.
            app.send_task(
                "console.run_operation",
                args=[self.pk],
                kwargs={"host": self.host.slug, "kind": self.kind, "signature": self.signature},
                queue=self.host.queue_name,
                task_id=self.celery_id or None,
            )
        except Exception as exc:  # kombu raises several types for an unreachable broker
            # The row is the queue of record: the host's agent claims it from the database.
            logger.warning("could not send the wake-up of operation %s: %s", self.pk, exc)
            self._update(celery_id="")
            self.append_log(
                f"# the task queue (Redis) could not be reached ({exc}); the agent of "
                f"{self.host.slug} takes this operation from the database within "
                f"{settings.AGENT_CLAIM_SECONDS:g} s\n"
            )
        self._changed()  # pages showing its target learn it exists (after the agent's wake-up)

    def claim(self, worker: str = "") -> bool:
        """Pending -> running, on one agent only; False (and nothing changed) if it is not pending."""
        fields = {"status": OperationStatus.RUNNING, "started_at": timezone.now(), "worker": worker}
        if not Operation.objects.filter(pk=self.pk, status=OperationStatus.PENDING).update(**fields):
            self.refresh_from_db()
            return False
        # The row was read just before: only these fields changed (no second read, and the
        # host it was read with stays loaded).
        for key, value in fields.items():
            setattr(self, key, value)
        self._changed()
        return True

    def cancel(self, reason: str) -> bool:
        """Pending -> cancelled (which frees its target's lock); False if it is no longer pending.

        A late broker message, or the agent's claim from the database, then finds it not pending
        and runs nothing."""
        cancelled = Operation.objects.filter(pk=self.pk, status=OperationStatus.PENDING).update(
            status=OperationStatus.CANCELLED, finished_at=timezone.now(), error=storable(reason)
        )
        self.refresh_from_db()
        if cancelled:
            self._changed()
        return bool(cancelled)

    def request_cancel(self, who: str) -> bool:
        """Ask the agent running it to end it; False (nothing changed) if it is not running."""
        asked = Operation.objects.filter(pk=self.pk, status=OperationStatus.RUNNING).update(
            cancel_requested_by=storable(who)[:150]
        )
        self.refresh_from_db()
        if asked:
            self._changed()
        return bool(asked)

    def set_process(self, process: dict | None, *, log: str = "") -> None:
        """Record the host command that runs now (its process group), or that none does; ``log``
        (the runner's ``$ command`` line) is appended in the same write."""
        self._update(process=process, **self._log_field(log))
        if log:
            self._changed(throttled=True)

    def set_progress(self, percent: int, label: str = "") -> None:
        percent = max(0, min(100, int(percent)))
        self._update(progress=percent, progress_label=label or self.progress_label)
        self._changed(throttled=True)

    def append_log(self, text: str) -> None:
        """Append to the log in the database without reading it (safe beside other writers)."""
        # Command output may hold NUL bytes (e.g. /proc/*/cmdline); PostgreSQL's text cannot.
        Operation.objects.filter(pk=self.pk).update(log=Concat(F("log"), Value(storable(text))))
        self._changed(throttled=True)

    def record_command(self, argv: list[str], returncode: int, seconds: float, *, log: str = "") -> None:
        """One more entry of the command list (the page's "equivalent commands"); the command
        no longer runs, so its process is forgotten in the same write, and ``log`` (the rest of its
        output) is appended in it. ``ended`` (when it ended) places it in the operation's timeline
        (bench/lifecycle.py's overhead breakdown)."""
        # Only the runner of this operation, through this object, writes its commands: the list
        # it holds is the row's (no read before the write).
        commands = self.commands or []
        entry = {
            "argv": argv,
            "exit": returncode,
            "seconds": round(seconds, 3),
            "ended": timezone.now().isoformat(timespec="milliseconds"),
        }
        self._update(commands=[*commands, entry], process=None, **self._log_field(log))
        self._changed(throttled=True)

    def set_result(self, result: dict) -> None:
        """What the handler learnt so far, kept even if it then fails (a cache built, an exit status)."""
        self._update(result=result)

    def finish(self, status: str, *, error: str = "", result: dict | None = None) -> bool:
        """Make it terminal: this also releases its target's lock (the partial unique index).

        Only an active operation ends: one that is terminal already (recorded as failed while its
        host was known dead, :meth:`fail_host_dead`) keeps its status, and what its agent found
        in the end is logged and kept as ``result["host_dead"]["checked"]``; False then."""
        fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error}
        if status == OperationStatus.SUCCEEDED:
            fields.update(progress=100, progress_label="done")
        if result is not None:
            fields["result"] = result
        fields = {key: storable(value) for key, value in fields.items()}
        ended = Operation.objects.filter(pk=self.pk, status__in=ACTIVE_STATUSES).update(**fields)
        if not ended:
            self.refresh_from_db()
            if "host_dead" in (self.result or {}):
                self.record_late_outcome(status, error)
            else:
                logger.warning("operation %s is %s already: not ended %s", self.pk, self.status, status)
            return False
        for key, value in fields.items():
            setattr(self, key, value)
        self._changed()
        return True

    def fail_host_dead(self, host: Host) -> bool:
        """Running -> failed because ``host`` (its host) is known dead: no heartbeat since
        ``host.last_heartbeat``, for longer than ``HOST_DEAD_AFTER_SECONDS``. Its agent cannot say
        how it ended; its target is freed. Only while the operation runs and the host is still
        dead (an agent that came back meanwhile settles it itself); False if nothing changed."""
        if host.last_heartbeat is None:
            return False
        since = timezone.localtime(host.last_heartbeat)
        reason = f"host {host.slug} offline since {since:%H:%M:%S}; outcome unknown"
        now = timezone.now()
        cutoff = now - timedelta(seconds=settings.HOST_DEAD_AFTER_SECONDS)
        marker = {"since": host.last_heartbeat.isoformat(), "declared_at": now.isoformat()}
        failed = Operation.objects.filter(
            pk=self.pk,
            status=OperationStatus.RUNNING,
            host__last_heartbeat__lt=cutoff,
            host__last_heartbeat=host.last_heartbeat,
        ).update(
            status=OperationStatus.FAILED,
            finished_at=now,
            error=reason,
            result=storable({**(self.result or {}), "host_dead": marker}),
        )
        self.refresh_from_db()
        if not failed:
            return False
        self.append_log(
            f"# {timezone.localtime(now):%H:%M:%S} failed: {reason} (no heartbeat for more than "
            f"{settings.HOST_DEAD_AFTER_SECONDS} s, HOST_DEAD_AFTER_SECONDS): its agent cannot tell how "
            "it ended, and its target is free again. If the agent returns, it checks on the host what "
            "happened and writes it here; the operation stays failed.\n"
        )
        self._changed()
        return True

    def record_late_outcome(self, status: str, detail: str) -> None:
        """What the agent found of an operation that was recorded as failed while its host was
        known dead: logged and kept in ``result["host_dead"]["checked"]``, status unchanged."""
        result = dict(self.result or {})
        dead = dict(result.get("host_dead") or {})
        dead["checked"] = {"at": timezone.now().isoformat(), "outcome": status, "detail": detail}
        result["host_dead"] = dead
        self._update(result=result)
        found = f"it had in fact {'succeeded' if status == OperationStatus.SUCCEEDED else status}"
        if detail:
            found += f" ({detail})"
        text = (
            f"# {timezone.localtime():%H:%M:%S} the agent of {self.host.slug} is back and checked this "
            f"operation, recorded as {self.status} while the host was offline: {found}. It stays "
            f"{self.status}: its target was freed then, and may have been acted on since.\n"
        )
        logger.warning("operation %s: %s", self.pk, text.lstrip("# ").strip())
        self.append_log(text)
        self._changed()

    def _update(self, **fields: Any) -> None:
        # Errors and results come from host commands: storable() keeps a NUL byte (which PostgreSQL
        # cannot store in text or jsonb) from failing the write.
        fields = {key: storable(value) for key, value in fields.items()}
        Operation.objects.filter(pk=self.pk).update(**fields)
        for key, value in fields.items():
            if not hasattr(value, "resolve_expression"):  # the log, appended in the database
                setattr(self, key, value)

    @staticmethod
    def _log_field(text: str) -> dict[str, Any]:
        """``text`` appended to the log by an UPDATE, without reading it (as append_log does)."""
        return {"log": Concat(F("log"), Value(storable(text)))} if text else {}

    def _changed(self, *, throttled: bool = False) -> None:
        """Tell the pages showing it (console.events; never fails the write)."""
        from console import events

        events.operation_event(self, throttled=throttled)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.rstrip("\n").split("\n")[-lines:])


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("audit events are append-only")

    def delete(self):
        raise PermissionError("audit events are append-only")

    def prune_older_than(self, cutoff) -> int:
        """The retention rule's only way to remove rows (see console.management.commands.prune_audit)."""
        deleted, _ = models.QuerySet.delete(self.filter(created_at__lt=cutoff))
        return deleted


class AuditEvent(models.Model):
    """One row per mutating request (or sensitive read), never edited or deleted."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # What the client sent as X-Request-ID (validated): for correlation, never for a decision.
    client_request_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target = models.CharField(max_length=255, blank=True, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    result = models.CharField(max_length=16, choices=AuditResult.choices)
    message = models.TextField(blank=True)
    operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The audit page's filters, each read newest first: by host, user, result, team member.
        # (On SQLite the planner needs statistics to use them well: prune_audit runs ANALYZE.)
        indexes = [
            # The page order, with what a user's row filter reads (console.audit_scope): a deep
            # page of a viewer's rows skips its offset in the index, without reading the rows
            # (100,000 rows, page 100: 11 ms through the old created_at index, 2 ms through this).
            models.Index(fields=["created_at", "id", "actor", "host", "result"], name="audit_newest_first"),
            models.Index(fields=["host", "created_at"], name="audit_host_time"),
            # What viewers and operators read of their hosts: the rows that are not refusals.
            models.Index(fields=["host", "result"], name="audit_host_result"),
            models.Index(fields=["actor_name", "created_at"], name="audit_actor_name_time"),
            models.Index(fields=["result", "created_at"], name="audit_result_time"),
            models.Index(fields=["actor", "created_at"], name="audit_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise PermissionError("audit events are append-only")
        # A refused value is recorded as sent, except that a NUL (which PostgreSQL cannot store in
        # text or jsonb) shows as U+2400: an audit row must never fail the request it records.
        for field in ("actor_name", "request_id", "action", "target", "params", "before", "after", "message"):
            setattr(self, field, storable(getattr(self, field)))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")


class Team(models.Model):
    """A group of users; its role bindings say what its members may do on which hosts."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="console_teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoleBinding(models.Model):
    """A team's role on every host or on chosen hosts."""

    class Role(models.TextChoices):
        VIEWER = "view", "Viewer"
        OPERATOR = "operate", "Operator"
        ADMIN = "admin", "Admin"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="bindings")
    role = models.CharField(max_length=16, choices=Role.choices)
    all_hosts = models.BooleanField(default=False)
    hosts = models.ManyToManyField(Host, blank=True, related_name="role_bindings")

    def __str__(self) -> str:
        where = "all hosts" if self.all_hosts else ", ".join(h.slug for h in self.hosts.all())
        return f"{self.team}: {self.role} on {where}"


class PasswordLink(models.Model):
    """A one-time link that sets a user's password: an invitation or a reset by a superuser.

    Only the SHA-256 of the token is stored (the token is 256 random bits, so a fast hash is
    enough: nobody can guess a preimage, and the database never holds a usable link). A link
    works once, until ``expires_at``, and only while it is the user's newest unused one.
    """

    class Purpose(models.TextChoices):
        INVITE = "invite", "Invitation"
        RESET = "reset", "Password reset"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_links"
    )
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # used_at: the password was set through it; revoked_at: a newer link, a deactivation or a
    # password set another way made it void.
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.purpose} link for {self.user_id}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class HostEnrolment(models.Model):
    """A one-time token that an agent exchanges for its host's credentials (console.enrolment).

    Only the SHA-256 of the token is stored (256 random bits: a fast hash is enough). It works
    once, until ``expires_at``, and only while it is the host's newest unused one."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="enrolments")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_from = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"enrolment of {self.host_id}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > timezone.now()

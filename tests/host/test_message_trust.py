"""An agent runs only what the console signed for its own host: forged and replayed broker
messages, and a forged operation row, run nothing and are recorded (real Redis, real agent)."""

from __future__ import annotations

import os
import uuid

import pytest
from django.db import transaction

from console.celery import app as celery_app
from console.models import AuditEvent, Host, Operation
from console.operations import RequestContext
from containers import services
from tests.host.helpers import wait_terminal
from tests.hosttools import wait_for

pytestmark = pytest.mark.host


def _send(slug: str, pk, **kwargs) -> None:
    celery_app.send_task("console.run_operation", args=[pk], kwargs=kwargs, queue=f"host.{slug}")


def _refusal(action: str, target: str, after: int) -> AuditEvent:
    rows = AuditEvent.objects.filter(pk__gt=after, action=action, target=target, result="refused")
    return wait_for(
        lambda: rows.first(),
        15,
        what=f"{action} row for {target}",
    )


def _last_audit() -> int:
    row = AuditEvent.objects.order_by("-pk").first()
    return row.pk if row else 0


def test_forged_and_replayed_messages_run_nothing_and_are_recorded(admin, start_agent):
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    ctx = RequestContext()

    # A legitimate create runs once.
    name = f"t-{uuid.uuid4().hex[:6]}"
    op = wait_terminal(services.create_container(actor=admin, ctx=ctx, host=host, name=name))
    assert op.status == "succeeded", op.error + op.log
    ran = len(op.commands)
    assert ran > 0

    # Replayed: the very message the console sent, again.
    mark = _last_audit()
    _send(agent.slug, op.pk, host=agent.slug, kind=op.kind, signature=op.signature)
    row = _refusal("agent.message.refused", f"operation #{op.pk}", mark)
    assert row.message == "the operation is succeeded: a replayed or late message; nothing was run"
    assert row.actor_name == f"agent {agent.slug}" and row.host_id == host.pk
    op.refresh_from_db()
    assert len(op.commands) == ran and op.status == "succeeded"

    # Forged: a message for an operation that does not exist, and one with a made-up signature.
    mark = _last_audit()
    _send(agent.slug, 10**9, host=agent.slug, kind="container.destroy", signature="0" * 64)
    row = _refusal("agent.message.refused", f"operation #{10**9}", mark)
    assert row.message == f"no such operation of host '{agent.slug}' in the database: nothing was run"
    _send(agent.slug, op.pk, host=agent.slug, kind=op.kind, signature="f" * 64)
    row = _refusal("agent.message.refused", f"operation #{op.pk}", mark)
    assert "signature is not the operation's" in row.message


def test_an_operation_row_altered_after_signing_is_refused_and_never_runs(admin, start_agent):
    """Someone who could write the operation row (the parameters of a queued create changed to
    another name) gets nothing run: the signature no longer verifies; the operation fails with
    that reason and the refusal is an audit row."""
    agent = start_agent()
    host = Host.objects.get(slug=agent.slug)
    mark = _last_audit()
    forged = f"forged-{uuid.uuid4().hex[:6]}"
    with transaction.atomic():
        op = services.create_container(actor=admin, ctx=RequestContext(), host=host, name="meant")
        params = {**op.params, "name": forged}
        Operation.objects.filter(pk=op.pk).update(params=params)
    op = wait_terminal(op, timeout=20)
    assert op.status == "failed"
    assert op.error == (
        "its signature does not verify (not queued by the console, or altered): nothing was run"
    )
    assert op.commands == [] and "$ " not in op.log
    assert not os.path.exists(os.path.join(agent.lxc_path, forged))
    assert not os.path.exists(os.path.join(agent.lxc_path, "meant"))
    row = _refusal("agent.operation.refused", f"operation #{op.pk}", mark)
    assert row.params["kind"] == "container.create"


def test_a_message_naming_another_hosts_operation_leaves_it_alone(admin, start_agent, host):
    """A's agent gets a message for B's operation (B has no agent running): it runs nothing, does
    not touch B's operation, and records the message."""
    agent = start_agent()
    mark = _last_audit()
    theirs = services.create_container(actor=admin, ctx=RequestContext(), host=host, name="theirs")
    _send(agent.slug, theirs.pk, host=host.slug, kind=theirs.kind, signature=theirs.signature)
    row = _refusal("agent.message.refused", f"operation #{theirs.pk}", mark)
    assert row.host.slug == agent.slug
    theirs.refresh_from_db()
    assert theirs.status == "pending" and theirs.commands == [] and theirs.worker == ""

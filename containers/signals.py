"""Push a container row's change to the pages (console.events): inventory saves and deletes."""

from __future__ import annotations

from typing import Any

from console import events
from containers.models import Container


def saved(sender: Any, instance: Container, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_shown_at_load", None)
    now = instance.shown()
    instance._shown_at_load = now  # type: ignore[attr-defined]
    if created or before != now:
        events.container_event(instance)


def deleted(sender: Any, instance: Container, **kwargs: Any) -> None:
    events.container_event(instance)


def state_changed(host_id: int, container_ids: list[int]) -> None:
    """A queryset .update() of states (no signal): lxc-monitor's event, libvirt gone away."""
    for pk in container_ids:
        events.after_commit("container", pk, host_id)


def connect() -> None:
    from django.db.models.signals import post_delete, post_save

    post_save.connect(saved, sender=Container, dispatch_uid="containers.push.saved")
    post_delete.connect(deleted, sender=Container, dispatch_uid="containers.push.deleted")

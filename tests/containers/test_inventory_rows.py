"""The agent's threads (periodic sync, lxc-monitor refresh, an operation's refresh) may all find a
new container at once: the one that inserts second must update the row, not fail on the unique key."""

from __future__ import annotations

import pytest

from containers.choices import Backend, State
from containers.inventory import _save
from containers.models import Container


@pytest.mark.django_db(transaction=True)
def test_a_row_inserted_meanwhile_is_updated_not_a_failure(host):
    first = Container.objects.create(
        host=host, backend=Backend.LXC, lxc_path="/var/lib/lxc", name="race", state=State.STOPPED
    )
    late = Container(host=host, backend=Backend.LXC, lxc_path="/var/lib/lxc", name="race")

    def reapply(row: Container) -> None:
        row.state = State.RUNNING

    saved = _save(late, reapply)
    assert saved.pk == first.pk
    assert Container.objects.filter(name="race").count() == 1
    assert Container.objects.get(pk=first.pk).state == State.RUNNING

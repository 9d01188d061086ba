"""lxc-monitor events: passing states are not written over the state an operation just read."""

from __future__ import annotations

from containers.models import Container
from containers.monitor import handle_event


def test_a_late_aborting_event_does_not_overwrite_stopped(host, tmp_path):
    # lxc_path is an empty directory: the refresh after a stable state finds no such container.
    c = Container.objects.create(host=host, name="late", lxc_path=str(tmp_path), state="STOPPED")
    for passing in ("ABORTING", "THAWED", "STARTING"):
        handle_event(host, str(tmp_path), "late", passing)
        c.refresh_from_db()
        assert c.state == ("STOPPED" if passing != "STARTING" else "STARTING"), passing


def test_while_an_operation_runs_on_the_container_its_own_read_back_replaces_the_monitors(host, tmp_path):
    """One read of the container, not two at once: lxc-monitor's refresh waits for the
    operation's; it is dropped when the operation read the container after the event, and run
    when the operation ends if the operation's read came first (an event is never lost)."""
    from console import busy
    from containers.inventory import refresh_container
    from containers.models import container_lock_key

    path = str(tmp_path)  # no container there: a refresh deletes the row, which shows it ran
    key = container_lock_key(host.slug, path, "web")

    def row() -> Container | None:
        return Container.objects.filter(host=host, lxc_path=path, name="web").first()

    Container.objects.create(host=host, name="web", lxc_path=path, state="STOPPED")
    with busy.running(key):
        handle_event(host, path, "web", "RUNNING")
        assert row() is not None and row().state == "RUNNING"  # the state at once, no read yet
        refresh_container(host, path, "web")  # the operation's own read-back, after the event
        assert row() is None
        Container.objects.create(host=host, name="web", lxc_path=path, state="RUNNING")
    assert row() is not None, "the monitor's read ran although the operation's covered it"

    with busy.running(key):
        refresh_container(host, path, "web")  # the operation's read came first ...
        Container.objects.create(host=host, name="web", lxc_path=path, state="RUNNING")
        handle_event(host, path, "web", "STOPPED")  # ... then the event
        assert row() is not None and row().state == "STOPPED"
    assert row() is None, "the event that came after the operation's read was not read back"

    # No operation of this agent on it: the monitor reads at once.
    Container.objects.create(host=host, name="web", lxc_path=path, state="STOPPED")
    handle_event(host, path, "web", "RUNNING")
    assert row() is None


def test_an_event_during_an_operation_is_read_back_after_its_terminal_write(host, tmp_path, monkeypatch):
    from console import tasks
    from console.models import Operation
    from containers.choices import ContainerOp
    from containers.models import container_lock_key

    path = str(tmp_path)
    key = container_lock_key(host.slug, path, "web")
    Container.objects.create(host=host, name="web", lxc_path=path, state="STOPPED")
    seen = {}

    def handler(op, runner):
        handle_event(host, path, "web", "RUNNING")  # lxc-monitor's thread, while the handler runs
        seen["row during the operation"] = Container.objects.filter(name="web").exists()
        return {}

    monkeypatch.setitem(tasks.HANDLERS, ContainerOp.START, handler)
    op = Operation.objects.create(kind=ContainerOp.START, host=host, target="web", lock_key=key)
    done = tasks.execute(op)
    assert done.status == "succeeded"
    assert seen == {"row during the operation": True}  # not read while it ran
    assert not Container.objects.filter(name="web").exists()  # read once it had ended

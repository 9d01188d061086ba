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

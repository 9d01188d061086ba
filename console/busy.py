"""The targets this agent is running an operation on, and the reads put off until it ends.

An operation reads its target back when its action is done (``lxc-info`` and the container's
config and cgroup files after a start). The agent's event watchers (``lxc-monitor``) see the state
change that the action causes at the same moment and would read the same target too: two reads
of one container at once, on two cores shared with the action itself, and the operation's
terminal write waits for both. A watcher asks :func:`defer` instead: while an operation of this
agent holds the target's lock, the watcher's read is kept, and

- dropped when a read of the target that began after the event ends (:func:`read_done`: the
  operation's own read-back, which the handler does anyway);
- otherwise run once the operation has ended (:func:`running`'s exit, after the terminal write),
  so an event that came after the operation's own read is never lost.

Only this process's operations count (a lock held by another agent is not ours to wait for).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# lock key -> {what: (when it was asked, the read)}, for the targets an operation runs on now.
_deferred: dict[str, dict[str, tuple[float, Callable[[], object]]]] = {}


@contextmanager
def running(lock_key: str) -> Iterator[None]:
    """While an operation holding ``lock_key`` runs here; on exit, the reads it did not cover run."""
    with _lock:
        _deferred.setdefault(lock_key, {})
    try:
        yield
    finally:
        with _lock:
            left = _deferred.pop(lock_key, {})
        for what, (_, read) in left.items():
            try:
                read()
            except Exception as exc:  # the periodic sync settles the target anyway
                logger.info("deferred %s of %s failed: %s", what, lock_key, exc)


def defer(lock_key: str, what: str, read: Callable[[], object]) -> bool:
    """Keep ``read`` until the operation on ``lock_key`` ends (one per ``what``, the latest);
    False when no operation of this agent runs on it: the caller reads now."""
    with _lock:
        pending = _deferred.get(lock_key)
        if pending is None:
            return False
        pending[what] = (time.monotonic(), read)
        return True


def read_done(lock_key: str, what: str, began: float) -> None:
    """A ``what`` of the target that began at ``began`` (time.monotonic()) has ended: a deferred
    one asked for before then is covered by it."""
    with _lock:
        pending = _deferred.get(lock_key)
        if pending and what in pending and pending[what][0] <= began:
            del pending[what]

"""What every pool kind does, one class per kind (``dir.py``, ``btrfs.py``, ``lvm.py``, ``zfs.py``).

The storage services, the agent's handlers, the inventory, the dependency check and the
container services ask the pool's kind (:func:`pool_type`) instead of branching on it, so a
new kind is one more module with one more subclass (and its ``PoolKind`` member).

Web side (reads the inventory, never the host): :meth:`PoolType.validate`,
:meth:`PoolType.blockers`, :meth:`PoolType.container_store`. Agent side (on the host):
:meth:`PoolType.create`, :meth:`PoolType.read`, :meth:`PoolType.destroy`. Both:
:meth:`PoolType.lxc_create_args`, what ``lxc-create`` takes for a container on such a pool.
``lxc-copy`` takes nothing kind-specific: ``-s`` uses the source's own store (subvolume
snapshot, snapshot LV, ZFS snapshot + clone), which LXC reads from the container's config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from console.models import Host
    from console.runner import Runner
    from storage.models import HostStorage, Pool

# set_progress(percent, label) of the running operation
Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class Dependant:
    # "pool", "mount", "physical volume", "container", "snapshot", "logical volume", "dataset", "clone"
    kind: str
    name: str
    step: str  # what to do with it first, in the seed's words


@dataclass
class Reading:
    """What the agent read of a pool: capacity and usage in bytes, and "ok" or what is wrong."""

    capacity: int | None = None
    used: int | None = None
    health: str = "ok"


class PoolType:
    """One pool kind. Instances hold no state: the pool row is passed to each method."""

    kind: ClassVar[str]
    # How messages name such a pool ("destroy the btrfs pool fast").
    noun: ClassVar[str]
    # Made on a block device the user names (checked blank, wiped only when confirmed).
    on_device: ClassVar[bool] = True
    # What destroys a device's contents, named when wiping must be confirmed.
    wiped_by: ClassVar[str] = ""
    # The signature (blkid TYPE) the kind leaves on its device.
    signature: ClassVar[str] = ""

    def check_host(self, host: Host) -> None:
        """Refuse (InvalidInput) a host whose kernel or tools cannot make this kind."""

    # ---------------------------------------------------------------- web side (inventory only)

    def validate(
        self,
        host: Host,
        inventory: HostStorage | None,
        *,
        name: str,
        device: dict | None,
        vg_name: str | None,
        path: str | None,
        lxc_path: str,
    ) -> dict[str, Any]:
        """Check what this kind needs beyond a free device and return the operation's params
        (``lxc_path`` and what the agent's :meth:`create` reads). ``device`` is the inventory's row
        of the chosen device (for kinds ``on_device``)."""
        return {"lxc_path": lxc_path}

    def blockers(self, pool: Pool, owned_rootfs: set[str]) -> list[Dependant]:
        """What the inventory says lives in the pool besides containers (whose own volumes or
        datasets, ``owned_rootfs``, go with ``lxc-destroy``), in the order to remove it."""
        return []

    def default_store(self, template: str) -> str:
        """The ``-B`` store a container made on this pool's LXC path gets unless one is asked."""
        return self.kind if template == "busybox" else "dir"

    def container_store(self, pool: Pool, host: Host, *, fssize: str | None) -> dict[str, str]:
        """The container-create operation's params for this pool's store, checked against the
        host's capabilities. A size is taken only by kinds that return ``fssize``."""
        return {}

    # ---------------------------------------------------------------- both sides

    def lxc_create_args(self, *, vgname: str | None, fssize: str | None, zfsroot: str | None) -> list[str]:
        """``lxc-create`` arguments for a container whose rootfs is on this kind's store."""
        return ["-B", self.kind]

    # ---------------------------------------------------------------- agent side (on the host)

    def create(self, params: dict[str, Any], runner: Runner, progress: Progress) -> dict[str, str]:
        """Make the pool on the host; returns the Pool row's fields (source, mountpoint, vg_name,
        zpool). ``params["lxc_path"]`` is already resolved and checked."""
        raise NotImplementedError

    def read(self, pool: Pool, runner: Runner, details: dict) -> Reading:
        """Capacity, usage and health on the host; fills ``details`` with what the page shows."""
        raise NotImplementedError

    def destroy(self, pool: Pool, runner: Runner, progress: Progress) -> None:
        """Take the pool apart, refused (ServiceError) while the host says anything is in it."""
        raise NotImplementedError


_KINDS: dict[str, PoolType] = {}


def register(cls: type[PoolType]) -> type[PoolType]:
    """Class decorator of each kind's module."""
    _KINDS[cls.kind] = cls()
    return cls


def pool_type(kind: str) -> PoolType:
    """The class of a pool kind (``dir``, ``btrfs``, ``lvm``, ``zfs``)."""
    from console.errors import InvalidInput
    from storage.drivers import btrfs, dir, lvm, zfs  # noqa: F401 - each registers its kind

    try:
        return _KINDS[kind]
    except KeyError:
        raise InvalidInput(f"unknown pool kind {kind!r}", field="kind") from None


def backing_stores() -> tuple[str, ...]:
    """``dir`` and every kind with a store of its own: what ``lxc-create -B`` is offered."""
    pool_type("dir")
    return ("dir", *(k for k in _KINDS if k != "dir"))

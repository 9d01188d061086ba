"""Keep the Container rows in step with what the host really has (runs on the agent)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from console import busy
from console.models import Host
from console.runner import CommandError, Runner
from containers.choices import Backend, State
from containers.drivers import cgroupfs
from containers.drivers.lxc import ContainerInfo, LxcDriver, overlay_origin
from containers.limits import SHOWN_KEYS
from containers.lxc_config import LxcConfig
from containers.models import Container, container_lock_key
from storage.drivers.lvm import LvmDriver
from storage.drivers.zfs import DATASET_RE, ZfsDriver
from storage.validators import LVM_NAME_RE

logger = logging.getLogger(__name__)


def _apply(container: Container, info: ContainerInfo, driver: LxcDriver, *, limits: bool = True) -> None:
    try:
        container.config_text = driver.read_config(container.name)
    except OSError:
        container.config_text = ""
    cfg = LxcConfig(container.config_text)
    container.state = info.state if info.state in State.values else State.UNKNOWN
    container.pid = info.pid if container.state != State.STOPPED else None
    container.ips = cgroupfs.ordered(info.ips) if container.state != State.STOPPED else []
    container.autostart = cfg.autostart
    container.start_delay = cfg.start_delay
    container.start_order = cfg.start_order
    container.groups = cfg.groups or info.groups
    container.rootfs = cfg.rootfs
    container.store = cfg.store
    if info.usage:
        container.usage = info.usage
    elif container.state == State.STOPPED:
        container.usage = {}
    # The frequent usage refresh (limits=False) leaves the cgroup values to syncs and operations.
    if limits and container.state in (State.RUNNING, State.FROZEN):
        keys = dict.fromkeys([*SHOWN_KEYS, *cfg.cgroup_limits])
        # The container's cgroup directories, read once for all its keys.
        dirs = cgroupfs.container_dirs(container.pid, container.name) if container.pid else None
        container.cgroup_live = {key: _cgroup_value(container, driver, key, dirs) for key in keys}
    elif limits:
        container.cgroup_live = {}
    container.last_seen = timezone.now()


def _cgroup_value(
    container: Container, driver: LxcDriver, key: str, dirs: dict[str, str] | None
) -> str | None:
    """A live cgroup value read from the kernel's file (in ``dirs``, the container's cgroup
    directories); ``lxc-cgroup`` only when they could not be found."""
    if container.pid and dirs:
        return cgroupfs.cgroup_value(container.pid, container.name, key, dirs)
    return driver.cgroup_get(container.name, key)


def _values(container: Container) -> tuple:
    """What a sync compares to decide whether a row changed: what pages show of it
    (``Container.shown``), its figures and its live cgroup values; last_seen is stamped on all
    rows in one query."""
    return (container.shown(), container.usage, container.cgroup_live)


def _save(container: Container, reapply: Callable[[Container], None]) -> Container:
    """Save the row. A new row that another thread of the agent inserted first (the periodic sync,
    lxc-monitor's refresh and an operation's own refresh run at the same time) is updated instead,
    rather than failing the operation on the unique key (seen on PostgreSQL after a create)."""
    if container.pk is not None:
        container.save()
        return container
    try:
        with transaction.atomic():
            container.save(force_insert=True)
        return container
    except IntegrityError:
        existing = Container.objects.get(
            host=container.host, backend=container.backend, lxc_path=container.lxc_path, name=container.name
        )
        reapply(existing)
        existing.save()
        return existing


_LVM_ROOTFS = re.compile(r"(?:lvm:)?/dev/(?P<vg>[^/]+)/(?P<lv>[^/]+)")


def block_store_origin(rootfs: str, runner: Runner, cache: dict | None = None) -> list[str]:
    """The rootfs values an LVM or ZFS snapshot's origin container has (``lxc-copy -s`` on those
    stores makes a snapshot LV, or a ZFS snapshot and a clone of it); [] for an original.

    Unlike an overlay, the config does not say: the store does (``lvs`` origin, ``zfs list -o
    name,origin``). LXC would destroy an LVM origin and its snapshots with it, so this link is
    what protects them. ``cache`` keeps each volume group's or pool's listing for one sync.
    """
    cache = {} if cache is None else cache
    if rootfs.startswith("lvm:"):
        m = _LVM_ROOTFS.fullmatch(rootfs)
        if not m or not LVM_NAME_RE.fullmatch(m["vg"]) or not LVM_NAME_RE.fullmatch(m["lv"]):
            return []
        key = ("lvm", m["vg"])
        if key not in cache:
            cache[key] = {lv.name: lv.origin for lv in LvmDriver(runner).lvs(m["vg"])}
        origin = cache[key].get(m["lv"], "")
        return [f"lvm:/dev/{m['vg']}/{origin}", f"/dev/{m['vg']}/{origin}"] if origin else []
    if rootfs.startswith("zfs:"):
        dataset = rootfs.removeprefix("zfs:")
        if not DATASET_RE.fullmatch(dataset) or "@" in dataset:
            return []
        key = ("zfs", dataset.split("/")[0])
        if key not in cache:
            cache[key] = ZfsDriver(runner).origins(key[1])
        snapshot = cache[key].get(dataset, "")
        return [f"zfs:{snapshot.partition('@')[0]}"] if snapshot else []
    return []


def _link_snapshot_origin(
    container: Container, runner: Runner | None = None, cache: dict | None = None
) -> None:
    """Record the origin row of a snapshot. An overlay snapshot names its origin's rootfs (LXC
    itself refuses to destroy an origin with snapshots: "has clones"). On LVM and ZFS the store
    is asked, only when given ``runner`` (the full sync's: not the frequent usage refresh) and
    only while no origin is recorded."""
    origin_rootfs = overlay_origin(container.rootfs)
    if origin_rootfs is None:
        if runner is None or container.store not in ("lvm", "zfs") or container.origin_id is not None:
            return
        try:
            candidates = block_store_origin(container.rootfs, runner, cache)
        except CommandError as exc:
            logger.warning("origin of %s (%s) unknown: %s", container.name, container.rootfs, exc)
            return
        origin = (
            Container.objects.filter(host=container.host, backend=Backend.LXC, rootfs__in=candidates)
            .exclude(pk=container.pk)
            .first()
            if candidates
            else None
        )
        if origin is not None:
            container.origin, container.origin_kind = origin, "snapshot"
            container.save(update_fields=["origin", "origin_kind"])
        return
    rootfs_dir = origin_rootfs.removeprefix("dir:").rstrip("/")
    container_dir, _, _ = rootfs_dir.rpartition("/")
    lxc_path, _, name = container_dir.rpartition("/")
    origin = Container.objects.filter(
        host=container.host, backend=Backend.LXC, lxc_path=lxc_path or "/", name=name
    ).first()
    if origin is not None and (container.origin_id != origin.pk or container.origin_kind != "snapshot"):
        container.origin, container.origin_kind = origin, "snapshot"
        container.save(update_fields=["origin", "origin_kind"])


def sync_lxc_path(host: Host, lxc_path: str, runner: Runner | None = None) -> list[str]:
    """Upsert every container under ``lxc_path`` and drop rows of containers gone from it."""
    driver = LxcDriver(runner or Runner(None), lxc_path)
    started = time.monotonic()
    existing = {
        c.name: c for c in Container.objects.filter(host=host, backend=Backend.LXC, lxc_path=lxc_path)
    }
    # The pids read before: the listing keeps one while it is still its container's init.
    infos = driver.list({name: c.pid for name, c in existing.items() if c.pid})
    seen = []
    # Everything is read first (configs, cgroup files); then one short transaction writes only
    # the rows that changed, and stamps last_seen on all of them with one UPDATE.
    prepared = []
    for info in infos:
        container = existing.get(info.name) or Container(
            host=host, backend=Backend.LXC, lxc_path=lxc_path, name=info.name
        )
        before = _values(container) if container.pk is not None else None
        _apply(container, info, driver)
        prepared.append((container, before, info))
        seen.append(info.name)
    read = time.monotonic()
    written = 0
    with transaction.atomic():
        for container, before, info in prepared:
            if before is None or _values(container) != before:
                container = _save(container, partial(_apply, info=info, driver=driver))
                written += 1
            existing[container.name] = container
        Container.objects.filter(host=host, backend=Backend.LXC, lxc_path=lxc_path, name__in=seen).update(
            last_seen=timezone.now()
        )
        gone = [name for name in existing if name not in seen]
        if gone:
            Container.objects.filter(
                host=host, backend=Backend.LXC, lxc_path=lxc_path, name__in=gone
            ).delete()
    logger.info(
        "inventory sync of %s: %d containers read in %.0f ms; %d rows written, %d removed, "
        "write transaction %.1f ms",
        lxc_path,
        len(seen),
        (read - started) * 1000,
        written,
        len(gone),
        (time.monotonic() - read) * 1000,
    )
    listings: dict = {}  # each volume group / pool listed once for this sync
    for name in seen:
        _link_snapshot_origin(existing[name], driver.runner, listings)
    return seen


def sync_host(host: Host) -> None:
    """The periodic full sync: every LXC path of the host."""
    for path in host.lxc_paths:
        try:
            sync_lxc_path(host, path)
        except CommandError as exc:
            logger.warning("inventory of %s:%s failed: %s", host.slug, path, exc)


def refresh_container(
    host: Host, lxc_path: str, name: str, runner: Runner | None = None, *, limits: bool = True
) -> Container | None:
    """Refresh one container's row after an operation (or delete it if it no longer exists)."""
    began = time.monotonic()
    container = _refresh_container(host, lxc_path, name, runner, limits=limits)
    # A read lxc-monitor's event asked for meanwhile is covered by this one (console.busy).
    busy.read_done(container_lock_key(host.slug, lxc_path, name), "refresh", began)
    return container


def _refresh_container(
    host: Host, lxc_path: str, name: str, runner: Runner | None, *, limits: bool
) -> Container | None:
    driver = LxcDriver(runner or Runner(None), lxc_path)
    qs = Container.objects.filter(host=host, backend=Backend.LXC, lxc_path=lxc_path, name=name)
    if not driver.exists(name):
        qs.delete()
        return None
    try:
        info = driver.info(name)
    except CommandError:
        if not driver.load_error(name):
            raise
        # LXC cannot load its config: keep the row (UNKNOWN) so the config can be repaired.
        info = ContainerInfo(name=name, state=State.UNKNOWN)
    container = qs.first() or Container(host=host, backend=Backend.LXC, lxc_path=lxc_path, name=name)
    _apply(container, info, driver, limits=limits)
    container = _save(container, lambda row: _apply(row, info, driver, limits=limits))
    # Overlay origins only: this runs for every running container every few seconds; copies
    # made by the console record their origin, others are linked at the next full sync.
    _link_snapshot_origin(container)
    return container


def refresh_running(host: Host) -> int:
    """Refresh the figures (CPU, memory, I/O, network) of the running containers.

    Read from the kernel's files (``containers.drivers.cgroupfs``: no process per container);
    only a container whose files cannot be read is asked with ``lxc-info``. The rows whose figures
    changed are written together, in one short transaction."""
    runner = Runner(None)
    count = 0
    from console.choices import ACTIVE_STATUSES
    from console.models import Operation

    busy = set(
        Operation.objects.filter(host=host, status__in=ACTIVE_STATUSES).values_list("lock_key", flat=True)
    )
    running = Container.objects.filter(
        host=host, backend=Backend.LXC, state__in=[State.RUNNING, State.FROZEN]
    ).only("pk", "lxc_path", "name", "pid", "usage", "config_text")
    changed: list[Container] = []
    for container in running:
        # A container under an operation is refreshed by that operation; querying it in the
        # middle of lxc-freeze makes the freeze wait for LXC's one-second poll.
        if container_lock_key(host.slug, container.lxc_path, container.name) in busy:
            continue
        figures = None
        if container.pid:
            # Parsed only when it names one (a third of the refresh's time was parsing configs).
            text = container.config_text
            interface = (
                LxcConfig(text).get("lxc.net.0.name") if "lxc.net.0.name" in text else None
            ) or "eth0"
            figures = cgroupfs.usage(container.pid, container.name, interface)
        if figures is None:
            try:
                refresh_container(host, container.lxc_path, container.name, runner, limits=False)
                count += 1
            except CommandError as exc:
                logger.info("usage refresh of %s failed: %s", container.name, exc)
            continue
        count += 1
        if "link" in container.usage:
            figures = {**figures, "link": container.usage["link"]}
        if figures != container.usage:
            container.usage = figures
            changed.append(container)
    if changed:
        _write_usage(changed)
    return count


def _write_usage(rows: list[Container]) -> None:
    """Write the rows' ``usage`` in one transaction: one parameterised UPDATE run once per row
    (``executemany``). ``bulk_update`` built one CASE expression of every row through the ORM:
    half of the refresh's CPU at 40 running containers. The statement names only the model's
    own table and columns, quoted by the database backend."""
    meta, field = Container._meta, Container._meta.get_field("usage")
    table, column, key = (
        connection.ops.quote_name(str(x)) for x in (meta.db_table, field.column, meta.pk.column)
    )
    statement = f"UPDATE {table} SET {column} = %s WHERE {key} = %s"  # noqa: S608 (names of the model)
    params = [(field.get_db_prep_save(row.usage, connection), row.pk) for row in rows]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(statement, params)

"""Fill an empty console database with a demo inventory at a chosen scale (issue 15's benchmark
scale by default: 10 hosts, 1,000 containers, 200 domains, 20,000 operations, 100,000 audit rows).

Rows are written through the ORM with ``bulk_create``; no agent runs and no host is touched (the
hosts show offline). It refuses a database that already holds hosts or operations, so it cannot
mix invented rows into a real console. Users: ``demo-admin`` (admin of every host),
``demo-operator`` (operator of every host), ``demo-viewer`` (viewer of the first 3 hosts) and
``demo-user1..7`` (actors of the history), all without a usable password unless
``--password-stdin`` gives them one.

    manage.py seed_demo [--scale 0.1] [--hosts N] [--containers N] [--domains N]
                        [--operations N] [--audit N] [--password-stdin]
"""

from __future__ import annotations

import random
import sys
import time
import xml.etree.ElementTree as ET  # building only
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from console.choices import AuditResult, OperationStatus
from console.models import AuditEvent, Host, Operation, RoleBinding, Team
from console.safe_xml import to_text
from containers.choices import Backend, ContainerOp, DomainOp, State
from containers.libvirt.domain_xml import DomainSpec, build_domain_xml
from containers.models import Container
from networks.models import Network
from storage.models import HostStorage, LoopDevice, Pool

DEFAULTS = {"hosts": 10, "containers": 1000, "domains": 200, "operations": 20_000, "audit": 100_000}
BATCH = 2000
SLUG = "demo-{:02d}"

_STATES = [State.RUNNING] * 5 + [State.STOPPED] * 4 + [State.FROZEN]
_OP_KINDS = [
    ContainerOp.START,
    ContainerOp.STOP,
    ContainerOp.FREEZE,
    ContainerOp.UNFREEZE,
    ContainerOp.SNAPSHOT,
    ContainerOp.CONFIG_SET,
    ContainerOp.LIMIT_SET,
    ContainerOp.FILES_LIST,
]
_DOMAIN_KINDS = [DomainOp.START, DomainOp.SHUTDOWN, DomainOp.DESTROY]
_OP_STATUSES = [OperationStatus.SUCCEEDED] * 8 + [OperationStatus.FAILED, OperationStatus.CANCELLED]
_AUDIT_RESULTS = [AuditResult.ACCEPTED] * 3 + [AuditResult.SUCCEEDED, AuditResult.REFUSED, AuditResult.FAILED]


def _config(path: str, name: str, ip: str) -> str:
    return (
        f"lxc.uts.name = {name}\n"
        f"lxc.rootfs.path = dir:{path}/{name}/rootfs\n"
        "lxc.net.0.type = veth\nlxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\n"
        f"lxc.net.0.ipv4.address = {ip}/24\n"
        "lxc.apparmor.profile = generated\nlxc.start.auto = 0\n"
    )


def _domain_xml(name: str, i: int) -> str:
    spec = DomainSpec(
        name=name,
        memory_mib=256,
        vcpus=1,
        init="/sbin/init",
        rootfs=f"/var/lib/libvirt/lxc/{name}",
        network="default",
        mac=f"52:54:00:00:{i // 256 % 256:02x}:{i % 256:02x}",
    )
    return build_domain_xml(spec)


def _network_xml(name: str, bridge: str) -> str:
    net = ET.Element("network")
    ET.SubElement(net, "name").text = name
    ET.SubElement(net, "bridge", name=bridge)
    return to_text(net)


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split over ``parts`` as evenly as whole numbers allow."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Command(BaseCommand):
    help = "Fill an empty database with demo hosts, containers, domains, operations and audit rows."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help="multiply every default count (0.01: 1 host, 10 containers, ...); explicit counts win",
        )
        for name, default in DEFAULTS.items():
            parser.add_argument(f"--{name}", type=int, default=None, help=f"default {default:,} x scale")
        parser.add_argument("--seed", type=int, default=15, help="random seed (the same data every time)")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read one password for the demo users from stdin"
        )

    def handle(self, *args: Any, scale: float, seed: int, password_stdin: bool, **options: Any) -> None:
        if not 0 < scale <= 100:
            raise CommandError("--scale must be above 0 and at most 100")
        counts = {}
        for name, default in DEFAULTS.items():
            value = options[name]
            scaled = max(1 if name == "hosts" else 0, round(default * scale))
            counts[name] = scaled if value is None else value
            if counts[name] < 0:
                raise CommandError(f"--{name} cannot be negative")
        if counts["hosts"] < 1:
            raise CommandError("--hosts must be at least 1")
        existing = Host.objects.count()
        if existing or Operation.objects.exists():
            raise CommandError(
                f"this database already holds {existing} host(s) and "
                f"{Operation.objects.count()} operation(s): seed_demo only fills an empty console "
                "database (run it on a fresh one, e.g. DATABASE_URL=sqlite:////var/tmp/demo.sqlite3 "
                "manage.py migrate, then manage.py seed_demo with the same DATABASE_URL)"
            )
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
            if not password:
                raise CommandError("--password-stdin: no password on standard input")
        started = time.monotonic()
        with transaction.atomic():
            made = self._seed(counts, random.Random(seed), password)  # noqa: S311 (demo data)
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # the planner's statistics, as prune_audit leaves them
        summary = ", ".join(f"{n:,} {what}" for what, n in made.items())
        self.stdout.write(f"seeded {summary} in {time.monotonic() - started:.1f} s")
        if password is None:
            self.stdout.write(
                "the demo users have no usable password: set one with "
                "'manage.py changepassword demo-admin' (or run seed_demo with --password-stdin)"
            )

    def _seed(self, counts: dict[str, int], rng: random.Random, password: str | None) -> dict[str, int]:
        now = timezone.now()
        hosts = Host.objects.bulk_create(
            Host(
                slug=SLUG.format(i + 1),
                name=f"demo host {i + 1}",
                address=f"192.0.2.{i + 1}",
                capabilities={"lxc": {"available": True, "version": "5.0.2", "templates": ["busybox"]}},
                last_inventory_sync=now,
            )
            for i in range(counts["hosts"])
        )
        hosts = list(Host.objects.filter(slug__in=[h.slug for h in hosts]).order_by("pk"))
        users = self._users(hosts, password)

        containers: list[Container] = []
        n = len(hosts)
        shares = zip(_spread(counts["containers"], n), _spread(counts["domains"], n), strict=True)
        for h, (n_lxc, n_domains) in enumerate(shares):
            host = hosts[h]
            for i in range(n_lxc):
                name = f"ct{i:04d}"
                state = rng.choice(_STATES)
                ip = f"10.{h}.{i // 250}.{i % 250 + 2}"
                running = state != State.STOPPED
                containers.append(
                    Container(
                        host=host,
                        name=name,
                        backend=Backend.LXC,
                        lxc_path=host.lxc_path,
                        store="dir",
                        rootfs=f"dir:{host.lxc_path}/{name}/rootfs",
                        state=state,
                        pid=10_000 + i if running else None,
                        ips=[ip] if running else [],
                        autostart=i % 10 == 0,
                        groups=["web"] if i % 3 == 0 else [],
                        usage={"memory_bytes": rng.randrange(1 << 20, 1 << 28)} if running else {},
                        config_text=_config(host.lxc_path, name, ip),
                    )
                )
            for i in range(n_domains):
                name = f"dom{i:03d}"
                state = rng.choice((State.RUNNING, State.STOPPED))
                containers.append(
                    Container(
                        host=host,
                        name=name,
                        backend=Backend.LIBVIRT,
                        state=state,
                        pid=20_000 + i if state == State.RUNNING else None,
                        domain_xml=_domain_xml(name, h * 1000 + i),
                    )
                )
        Container.objects.bulk_create(containers, batch_size=BATCH)
        containers = list(Container.objects.filter(host__in=hosts).select_related("host").order_by("pk"))
        # One container in ten is a snapshot of another on its host (the clone graph, the list's origin).
        by_host: dict[int, list[Container]] = {}
        for c in containers:
            if c.backend == Backend.LXC:
                by_host.setdefault(c.host_id, []).append(c)
        copies = []
        for rows in by_host.values():
            for i in range(5, len(rows), 10):
                rows[i].origin, rows[i].origin_kind = rows[i - 5], "snapshot"
                copies.append(rows[i])
        Container.objects.bulk_update(copies, ["origin", "origin_kind"], batch_size=BATCH)

        self._storage_and_networks(hosts)
        operations = self._operations(counts["operations"], containers, users, rng, now)
        audit_rows = self._audit(counts["audit"], hosts, containers, operations, users, rng, now)
        return {
            "hosts": len(hosts),
            "containers": sum(c.backend == Backend.LXC for c in containers),
            "domains": sum(c.backend == Backend.LIBVIRT for c in containers),
            "operations": len(operations),
            "audit rows": audit_rows,
        }

    def _users(self, hosts: list[Host], password: str | None) -> list[Any]:
        User = get_user_model()  # noqa: N806
        names = ["demo-admin", "demo-operator", "demo-viewer", *(f"demo-user{i}" for i in range(1, 8))]
        taken = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        if taken:
            raise CommandError(f"these users already exist: {', '.join(sorted(taken))}")
        users = []
        for name in names:
            user = User(username=name)
            user.set_password(password) if password else user.set_unusable_password()
            users.append(user)
        User.objects.bulk_create(users)
        users = list(User.objects.filter(username__in=names).order_by("pk"))
        for user, role, bound in (
            (users[0], RoleBinding.Role.ADMIN, None),
            (users[1], RoleBinding.Role.OPERATOR, None),
            (users[2], RoleBinding.Role.VIEWER, hosts[:3]),
        ):
            team = Team.objects.create(name=f"{user.username} team")
            team.members.add(user, *(users[3:] if role == RoleBinding.Role.OPERATOR else []))
            binding = RoleBinding.objects.create(team=team, role=role, all_hosts=bound is None)
            if bound is not None:
                binding.hosts.set(bound)
        return users

    def _storage_and_networks(self, hosts: list[Host]) -> None:
        HostStorage.objects.bulk_create(
            HostStorage(
                host=h,
                image_dir="/var/lib/lxc-console/storage",
                image_dir_free_bytes=50 << 30,
                block_devices=[{"path": "/dev/loop0", "size": 4 << 30, "type": "loop", "fstype": "btrfs"}],
            )
            for h in hosts
        )
        LoopDevice.objects.bulk_create(
            LoopDevice(
                host=h,
                device=f"/dev/loop{i}",
                backing_file=f"/var/lib/lxc-console/storage/disk{i}.img",
                size_bytes=4 << 30,
                fstype="btrfs",
            )
            for h in hosts
            for i in range(2)
        )
        Pool.objects.bulk_create(
            Pool(
                host=h,
                name=name,
                kind=kind,
                source=f"/srv/pools/{name}",
                lxc_path=f"/srv/pools/{name}",
                mountpoint=f"/srv/pools/{name}" if kind == "btrfs" else "",
                capacity_bytes=100 << 30,
                used_bytes=(10 + 7 * i) << 30,
            )
            for h in hosts
            for i, (name, kind) in enumerate((("fast", "btrfs"), ("plain", "dir")))
        )
        Network.objects.bulk_create(
            Network(
                host=h,
                name=name,
                bridge=f"virbr{i}",
                address=f"192.168.{100 + i}.1",
                netmask="255.255.255.0",
                active=True,
                autostart=True,
                uuid=f"00000000-0000-4000-9000-{h.pk * 10 + i:012x}",
                xml=_network_xml(name, f"virbr{i}"),
            )
            for h in hosts
            for i, name in enumerate(("default", "isolated"))
        )

    def _operations(
        self, n: int, containers: list[Container], users: list[Any], rng: random.Random, now: Any
    ) -> list[Operation]:
        log = "$ lxc-start -P /var/lib/lxc -n ct0001\n" + "starting the container\n" * 8
        rows = []
        for i in range(n):
            c = rng.choice(containers)
            kinds = _OP_KINDS if c.backend == Backend.LXC else _DOMAIN_KINDS
            created = now - timedelta(seconds=(n - i) * 30)
            status = rng.choice(_OP_STATUSES)
            rows.append(
                Operation(
                    kind=rng.choice(kinds),
                    actor=rng.choice(users) if i % 4 else None,
                    host=c.host,
                    target=c.target,
                    lock_key=c.lock_key,
                    status=status,
                    progress=100 if status == OperationStatus.SUCCEEDED else 0,
                    log=log,
                    commands=[{"argv": ["lxc-start", "-n", c.name], "exit": 0, "seconds": 0.03}],
                    error="lxc-start: exit status 1" if status == OperationStatus.FAILED else "",
                    created_at=created,
                    started_at=created + timedelta(milliseconds=20),
                    finished_at=created + timedelta(milliseconds=90),
                )
            )
        Operation.objects.bulk_create(rows, batch_size=BATCH)
        return list(Operation.objects.order_by("pk").only("pk"))

    def _audit(
        self,
        n: int,
        hosts: list[Host],
        containers: list[Container],
        operations: list[Operation],
        users: list[Any],
        rng: random.Random,
        now: Any,
    ) -> int:
        actions = [*(k.value for k in _OP_KINDS), "container.create", "team"]
        batch = []
        for i in range(n):
            actor = rng.choice(users)
            c = containers[i % len(containers)] if containers else None
            result = rng.choice(_AUDIT_RESULTS)
            batch.append(
                AuditEvent(
                    actor=actor,
                    actor_name=actor.username,
                    created_at=now - timedelta(seconds=(n - i) * 6),
                    ip=f"192.0.2.{rng.randrange(1, 250)}",
                    request_id=f"{i:032x}",
                    action=rng.choice(actions),
                    host=c.host if c is not None else rng.choice(hosts),
                    target=c.target if c is not None else "",
                    params={"name": c.name} if c is not None else {},
                    result=result,
                    message="your role does not allow 'admin' actions" if result == "refused" else "",
                    operation=operations[i % len(operations)]
                    if operations and result == AuditResult.ACCEPTED
                    else None,
                )
            )
            if len(batch) == BATCH:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        AuditEvent.objects.bulk_create(batch)
        return n

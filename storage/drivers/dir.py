"""``dir`` pools: a plain directory used as an LXC path; capacity from the filesystem holding it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.runner import Runner
from storage.drivers.pool import PoolType, Progress, Reading, register
from storage.validators import validate_pool_directory

if TYPE_CHECKING:
    from storage.models import Pool


def fs_usage(path: str) -> tuple[int, int, int]:
    """(capacity, used, free-for-unprivileged) bytes of the filesystem holding ``path``."""
    st = os.statvfs(path)
    capacity = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return capacity, capacity - st.f_bfree * st.f_frsize, free


class DirDriver:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def create(self, path: str) -> None:
        Path(path).mkdir(mode=0o755, parents=True, exist_ok=True)
        self.runner.log(f"# created directory {path}")

    def resolve(self, path: str) -> str:
        """``path`` with every symbolic link resolved on the runner's host (``realpath -m``)."""
        return self.runner.run(["realpath", "-m", "--", path], record=False, timeout=10).stdout.strip()

    def container_names(self, lxc_path: str) -> list[str]:
        """The containers an LXC path holds on the runner's host (directories with a config)."""
        result = self.runner.run(
            ["find", lxc_path, "-mindepth", "2", "-maxdepth", "2", "-name", "config"],
            check=False,
            record=False,
            timeout=30,
        )
        return sorted(
            line.rsplit("/", 2)[-2] for line in result.stdout.splitlines() if line.endswith("/config")
        )

    def remove_if_empty(self, path: str) -> bool:
        """Remove the pool's directory only when nothing is left in it."""
        p = Path(path)
        if p.is_dir() and not any(p.iterdir()):
            p.rmdir()
            self.runner.log(f"# removed empty directory {path}")
            return True
        return False


@register
class DirPool(PoolType):
    """A plain directory as an LXC path; containers on it are ``dir`` (or overlay snapshots)."""

    kind = "dir"
    noun = "directory pool"
    on_device = False

    def validate(self, host, inventory, *, name, device, vg_name, path, lxc_path):
        return {"lxc_path": validate_pool_directory(path) if path else lxc_path}

    def default_store(self, template: str) -> str:
        return "dir"

    def lxc_create_args(self, *, vgname: str | None, fssize: str | None, zfsroot: str | None) -> list[str]:
        return []

    def create(self, params: dict[str, Any], runner: Runner, progress: Progress) -> dict[str, str]:
        progress(20, f"mkdir {params['lxc_path']}")
        DirDriver(runner).create(params["lxc_path"])
        return {"source": params["lxc_path"]}

    def read(self, pool: Pool, runner: Runner, details: dict) -> Reading:
        if not os.path.isdir(pool.lxc_path):
            return Reading(health=f"{pool.lxc_path} does not exist")
        capacity, used, _free = fs_usage(pool.lxc_path)
        return Reading(capacity, used)

    def destroy(self, pool: Pool, runner: Runner, progress: Progress) -> None:
        if not DirDriver(runner).remove_if_empty(pool.lxc_path):
            runner.log(f"# kept {pool.lxc_path}: it is not empty")

"""``dir`` pools: a plain directory used as an LXC path; capacity from the filesystem holding it."""

from __future__ import annotations

import os
from pathlib import Path

from console.runner import Runner


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

    def remove_if_empty(self, path: str) -> bool:
        """Remove the pool's directory only when nothing is left in it."""
        p = Path(path)
        if p.is_dir() and not any(p.iterdir()):
            p.rmdir()
            self.runner.log(f"# removed empty directory {path}")
            return True
        return False

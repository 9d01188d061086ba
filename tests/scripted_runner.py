"""One scripted runner for the tests of what cannot run in a request-thread unit test.

It records every argv (and its keyword arguments) and answers from a script instead of running
anything: refused input must run nothing, LVM logical volumes and ZFS cannot run on this kernel,
and ``lxc-create`` is not run from a unit test. What the tools really do is tested against the real
tools in tests/host, tests/storage (host-marked) and tests/vm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from console.runner import CommandError, CommandResult, Runner

Answer = CommandResult | tuple[int, str, str] | None
Script = Mapping[str, CommandResult] | Callable[[list[str]], Answer]


class ScriptedRunner(Runner):
    """``script``: answers by command name (``{"lvs": CommandResult(...)}``), or a function of the
    argv returning a :class:`CommandResult`, ``(returncode, stdout, stderr)`` or None; anything
    unscripted succeeds with no output. A failing answer raises :class:`CommandError` as the real
    runner does, unless ``check=False``."""

    def __init__(self, script: Script | None = None) -> None:
        super().__init__(None, default_timeout=5)
        self.script = script
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self.notes: list[str] = []

    def answer(self, argv: list[str]) -> CommandResult:
        if callable(self.script):
            answer = self.script(argv)
        elif self.script is not None:
            answer = self.script.get(argv[0])
        else:
            answer = None
        if answer is None:
            return CommandResult(argv, 0, "", "", 0.0)
        if isinstance(answer, tuple):
            return CommandResult(argv, *answer, 0.0)
        return answer

    def run(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        self.calls.append((list(argv), kwargs))
        result = self.answer(list(argv))
        if kwargs.get("check", True) and result.returncode != 0:
            raise CommandError(
                kwargs.get("error_message") or "failed",
                argv=argv,
                returncode=result.returncode,
                stderr=result.stderr,
            )
        return result

    def log(self, text: str) -> None:
        self.notes.append(text)

    @property
    def argvs(self) -> list[list[str]]:
        return [argv for argv, _ in self.calls]

"""Run the agent of one host: a Celery worker consuming only the queue host.<slug>.

On another machine, enrol it first: ``agent --enrol TOKEN --console URL`` exchanges the one-time
token an admin got on the host's page for the host's own credentials, written to
``--credentials`` (mode 600); ``agent --credentials FILE`` then runs on them (console.enrolment)."""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEFAULT_CREDENTIALS = "/etc/lxc-console/agent.json"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 600, also when it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enrol(token: str, console: str, timeout: float = 30) -> dict:
    """POST the token to the console; its answer (the credentials) or a CommandError."""
    if not re.match(r"https?://", console):
        raise CommandError("--console is the console's URL, http(s)://host:port")
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        console.rstrip("/") + "/agent/enrol/",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", "")
        except ValueError:
            reason = ""
        raise CommandError(f"the console refused the token (HTTP {exc.code}): {reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CommandError(f"could not reach the console at {console}: {exc}") from exc
    if not all(isinstance(answer.get(k), str) for k in ("host", "database_url", "redis_url", "agent_key")):
        raise CommandError("the console's answer is not a set of credentials")
    return answer


class Command(BaseCommand):
    help = "Start the agent (Celery worker) for a managed host, or enrol it (--enrol)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=None, help="host slug (default: the credentials', else local)")
        parser.add_argument("--lxc-path", default=settings.CONSOLE_DEFAULT_LXC_PATH)
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument(
            "--enrol", metavar="TOKEN", help="exchange an enrolment token for credentials, then exit"
        )
        parser.add_argument("--console", help="with --enrol: the console's URL")
        parser.add_argument(
            "--credentials",
            default=os.environ.get("CONSOLE_AGENT_CREDENTIALS", ""),
            help=f"the enrolled credentials file (--enrol writes {DEFAULT_CREDENTIALS} unless told)",
        )

    def handle(
        self, *args, host: str | None, lxc_path: str, concurrency: int, loglevel: str, **options
    ) -> None:
        if options["enrol"]:
            if not options["console"]:
                raise CommandError("--enrol needs --console URL")
            answer = enrol(options["enrol"], options["console"])
            path = Path(options["credentials"] or DEFAULT_CREDENTIALS)
            write_private(path, json.dumps(answer, indent=1) + "\n")
            self.stdout.write(
                f"enrolled as host '{answer['host']}': credentials in {path} (mode 600); start the "
                f"agent with 'manage.py agent --credentials {path}'"
            )
            return
        env = {**os.environ}
        if options["credentials"]:
            try:
                given = json.loads(Path(options["credentials"]).read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the credentials file: {exc}") from exc
            if host and host != given.get("host"):
                raise CommandError(f"the credentials are host '{given.get('host')}'s, not '{host}'s")
            host = given["host"]
            env.update(
                DATABASE_URL=given["database_url"],
                REDIS_URL=given["redis_url"],
                CONSOLE_AGENT_KEY=given["agent_key"],
            )
            # The console's own master key is not this machine's business.
            env.pop("CONSOLE_SIGNING_KEY", None)
        host = host or settings.CONSOLE_LOCAL_HOST_SLUG
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", host):
            raise CommandError("the host slug must be lowercase letters, digits and '-'")
        if not lxc_path.startswith("/"):
            raise CommandError("--lxc-path must be absolute")
        env.update(CONSOLE_AGENT_HOST=host, CONSOLE_LXC_PATH=lxc_path)
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-Q",
            f"host.{host}",
            "--hostname",
            f"agent-{host}@%h",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        os.execve(sys.executable, argv, env)

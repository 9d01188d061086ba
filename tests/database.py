"""The test database switch: ``pytest --database=postgres`` (or ``TEST_DATABASE=postgres``).

SQLite (the default) needs nothing. For PostgreSQL this plugin starts a private cluster of
Debian's ``postgresql`` before Django reads its settings: ``initdb`` in a scratch directory,
``postgres`` on a free loopback port, as the ``postgres`` user when the suite runs as root
(PostgreSQL refuses to run as root). It sets ``DATABASE_URL`` for the session; Django's test
runner then makes its ``test_console`` database in it, and the processes the tests start
(agents, uvicorn) get that same database from :func:`session_database_url`. At the end the server
is stopped by its PID and the scratch directory removed; its log is kept in
``var/test-logs/postgres.log``.

A ``DATABASE_URL`` naming a PostgreSQL server already set in the environment is used as it is
(no private cluster). PostgreSQL missing: with CI=true the run fails, elsewhere every test is
skipped (never run on SQLite instead).

It is loaded with ``-p tests.database`` (pyproject's addopts) so that its
``pytest_load_initial_conftests`` runs before pytest-django's, which imports the settings.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.hosttools import IN_CI, free_port

ROOT = Path(__file__).resolve().parent.parent
CHOICES = ("sqlite", "postgres")
_cluster_key = pytest.StashKey["PrivateCluster | None"]()
_missing_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=CHOICES,
        default=os.environ.get("TEST_DATABASE", "sqlite"),
        help="database the suite runs on: sqlite (default) or postgres (a private cluster it starts)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    early_config.stash[_cluster_key] = None
    options = parser.parse_known_args(args)
    if options.help or options.version or options.database != "postgres":
        return
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return  # a server of the caller's own
    bindir = postgres_bindir()
    if bindir is None:
        reason = "PostgreSQL is not installed (Debian's postgresql package): --database=postgres cannot run"
        if IN_CI:
            raise pytest.UsageError(reason)
        early_config.stash[_missing_key] = reason
        return
    cluster = PrivateCluster(bindir)
    early_config.stash[_cluster_key] = cluster
    os.environ["DATABASE_URL"] = cluster.start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = config.stash.get(_missing_key, "")
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_report_header(config: pytest.Config) -> str:
    cluster = config.stash.get(_cluster_key, None)
    if cluster is not None:
        return f"database: PostgreSQL, private cluster on 127.0.0.1:{cluster.port} ({cluster.version})"
    if config.getoption("database") == "postgres":
        return "database: PostgreSQL from DATABASE_URL"
    return "database: SQLite"


@pytest.fixture(scope="session", autouse=True)
def _no_session_left_on_the_test_database(request: pytest.FixtureRequest):
    """On PostgreSQL, Django cannot drop its test database while another session uses it. Set up
    after (so torn down before) the test database: a session still connected then is a leak of
    some test (a thread or process not ended); it is named in a warning, then ended."""
    if request.config.getoption("database") != "postgres":
        yield
        return
    request.getfixturevalue("django_db_setup")
    yield
    from django.db import connection

    with request.getfixturevalue("django_db_blocker").unblock(), connection.cursor() as cur:
        cur.execute(
            "SELECT pid, application_name, client_addr, state, left(query, 200) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        left = cur.fetchall()
        for row in left:
            cur.execute("SELECT pg_terminate_backend(%s)", [row[0]])
    if left:
        import warnings

        warnings.warn(f"sessions left on the test database at the end: {left}", stacklevel=1)


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster = config.stash.get(_cluster_key, None)
    if cluster is not None:
        cluster.stop()
        config.stash[_cluster_key] = None


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server installed the Debian way (/usr/lib/postgresql/<major>/bin),
    or the directory TEST_POSTGRES_BINDIR names (another layout; a test of the missing case)."""
    override = os.environ.get("TEST_POSTGRES_BINDIR")
    found = [Path(override)] if override else [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    found = [p for p in found if (p / "initdb").exists() and (p / "postgres").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def session_database_url() -> str:
    """The database this test session runs on (Django's test database), as a URL for a child process."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    user, password = quote(s["USER"] or "", safe=""), quote(s["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{s['HOST']}:{s['PORT']}/{quote(s['NAME'], safe='')}"


class PrivateCluster:
    """One PostgreSQL server of the test session's own: scratch data directory, loopback only."""

    USER = "console"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.version = f"PostgreSQL {bindir.parent.name}" if bindir.parent.name.isdigit() else str(bindir)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        # Under /var/tmp like the suite's LXC scratch directories: the postgres user must be able
        # to reach it (a worktree or pytest's basetemp may be private to root).
        self.dir = Path(tempfile.mkdtemp(prefix="console-test-pg-", dir="/var/tmp"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.password = secrets.token_urlsafe(24)
        # The server refuses to run as root: as root it runs as Debian's postgres user.
        self.as_user = "postgres" if os.geteuid() == 0 else None

    def _run_as(self) -> dict:
        if self.as_user is None:
            return {}
        return {"user": self.as_user, "group": self.as_user, "extra_groups": []}

    def start(self) -> str:
        if self.as_user:
            shutil.chown(self.dir, self.as_user, self.as_user)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            shutil.chown(pwfile, self.as_user, self.as_user)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "PGTZ": "UTC"}
        # C collation and UTF-8, like SQLite's default BINARY ordering; password logins only.
        initdb = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            **self._run_as(),
        )
        pwfile.unlink()
        if initdb.returncode != 0:
            self.stop()
            raise pytest.UsageError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        for attempt in range(3):  # another process may take the free port between pick and bind
            self.port = free_port()
            if self._start_server(env):
                break
            if attempt == 2:
                log = self.log_path.read_text() if self.log_path.exists() else ""
                self.stop()
                raise pytest.UsageError(f"the test PostgreSQL server did not start:\n{log[-3000:]}")
        self._create_database("console")
        return f"postgres://{self.USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/console"

    def _start_server(self, env: dict) -> bool:
        log = open(self.log_path, "a")
        if self.as_user:
            shutil.chown(self.log_path, self.as_user, self.as_user)
        # Durability off: a scratch cluster thrown away after the run; this keeps the suite fast.
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.dir}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            cwd=self.dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C of the test run reaches pytest, which stops it in order.
            start_new_session=True,
            **self._run_as(),
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._connect("postgres") is not None:
                return True
            time.sleep(0.2)
        self._stop_server()
        return False

    def _connect(self, dbname: str):
        import psycopg

        try:
            return psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user=self.USER,
                password=self.password,
                dbname=dbname,
                autocommit=True,
                connect_timeout=3,
            )
        except psycopg.OperationalError:
            return None

    def _create_database(self, name: str) -> None:
        from psycopg import sql

        conn = self._connect("postgres")
        assert conn is not None
        with conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _stop_server(self) -> None:
        """Fast shutdown by PID (SIGINT: disconnect clients, end cleanly); SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self._stop_server()
        if self.log_path.exists():
            logs = ROOT / "var" / "test-logs"
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, logs / "postgres.log")
        shutil.rmtree(self.dir, ignore_errors=True)

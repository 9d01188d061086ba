"""The test database switch itself (tests/database.py): the suite really runs where it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dj_database_url
import pytest
from django.db import connection

from tests.database import session_database_url

TESTS = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_the_suite_runs_on_the_database_it_was_asked_for(request):
    wanted = request.config.getoption("database")
    assert connection.vendor == {"sqlite": "sqlite", "postgres": "postgresql"}[wanted]
    with connection.cursor() as cur:  # a query, so a wrong engine could not pass by luck
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


@pytest.mark.django_db
def test_child_processes_get_the_test_database_of_this_session():
    parsed = dj_database_url.parse(session_database_url())
    mine = connection.settings_dict
    assert parsed["ENGINE"] == mine["ENGINE"]
    assert str(parsed["NAME"]) == str(mine["NAME"])
    if connection.vendor == "postgresql":
        assert mine["NAME"].startswith("test_")
        assert (parsed["HOST"], int(parsed["PORT"]), parsed["USER"], parsed["PASSWORD"]) == (
            mine["HOST"],
            int(mine["PORT"]),
            mine["USER"],
            mine["PASSWORD"],
        )


def test_no_test_builds_its_own_database_url():
    """Agents, uvicorn and manage.py started by tests take session_database_url(): a URL built
    from an SQLite path would send them to another database than the test's on PostgreSQL."""
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path not in (TESTS / "database.py", Path(__file__).resolve()) and "sqlite:///" in path.read_text()
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("ci", "returncode", "says"), [("true", 4, "PostgreSQL is not installed"), ("", 0, "1 skipped")]
)
def test_a_missing_postgresql_fails_the_run_in_ci_and_skips_it_elsewhere(tmp_path, ci, returncode, says):
    """Never a silent run on SQLite instead: CI fails, a developer machine skips every test."""
    env = {
        **os.environ,
        "CI": ci,
        "TEST_POSTGRES_BINDIR": str(tmp_path),
        "CONSOLE_TEST_DB": str(tmp_path / "t.db"),
    }
    env.pop("DATABASE_URL", None)  # set when this session itself runs on PostgreSQL
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--database=postgres",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/console/test_test_database.py::test_the_suite_runs_on_the_database_it_was_asked_for",
        ],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == returncode, run.stdout + run.stderr
    assert says in run.stdout + run.stderr

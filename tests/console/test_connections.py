"""Database connections are kept for a while in every configuration (the agent opens none per
operation or per lxc-monitor event)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _max_age(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['CONN_MAX_AGE'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "console.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_the_default_sqlite_database_keeps_connections_as_a_database_url_does(tmp_path):
    assert _max_age(CONSOLE_VAR_DIR=str(tmp_path), CONSOLE_AGENT_HOST="h1") == "60"
    assert _max_age(CONSOLE_VAR_DIR=str(tmp_path)) == "60"
    # Read from the settings only (nothing connects to it).
    assert _max_age(DATABASE_URL="postgres://console:x@127.0.0.1:9/console") == "60"

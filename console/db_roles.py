"""PostgreSQL roles of the agents: each host's agent logs in as its own role, which can write only
what an agent reports, and row-level security limits it to its own host's rows.

Two kinds of role:

* ``console_agent`` (NOLOGIN): the privileges every agent has, and the role the row-level security
  policies are written for. Granted per table and per column (:data:`TABLES`): the inventory
  (containers, hooks, pools, loop devices, host storage, networks), its operations' progress,
  log, status and result, its host row's heartbeat and detected facts, and INSERT (never UPDATE
  or DELETE) on the audit trail. Nothing on users, teams, role bindings, sessions, password
  links, two-factor devices or login attempts.
* ``console_agent_<host id>`` (LOGIN, member of ``console_agent``): one host's agent. Its host is
  the number in its name (:func:`host_id_sql`): the policies compare each row's host with it, so
  a role sees and writes only its own host's rows; a row of another host is invisible (UPDATE
  and DELETE find nothing) and INSERTing one is refused.

The console's own role (the tables' owner) is not subject to these policies (row-level security
does not apply to a table's owner unless forced), so the web side reads every host as before.

PostgreSQL only: on SQLite (one machine, the embedded default) there are no roles to give.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

GROUP = "console_agent"
ROLE_PREFIX = "console_agent_"


@dataclass(frozen=True)
class Table:
    model: str  # app_label.Model
    # Which rows are the agent's: a policy expression over the row.
    own: str
    select: bool = True
    insert: bool = False
    delete: bool = False
    # Columns it may UPDATE ("*": all of them); () none.
    update: tuple[str, ...] = ()
    # Columns it may SELECT, when not all (select=True means every column).
    select_columns: tuple[str, ...] = ()


HOST = "host_id = console_agent_host()"
TABLES = (
    Table(
        "console.Host",
        own="id = console_agent_host()",
        update=(
            "agent_name",
            "last_heartbeat",
            "lxc_path",
            "extra_lxc_paths",
            "mount_roots",
            "capabilities",
            "capabilities_detected_at",
            "last_inventory_sync",
            "autostart_boot_id",
        ),
    ),
    Table(
        "console.Operation",
        own=HOST,
        # Its own operations: the boot autostart is queued by the agent itself.
        insert=True,
        update=(
            "status",
            "progress",
            "progress_label",
            "log",
            "commands",
            "error",
            "result",
            "celery_id",
            "worker",
            "process",
            "signature",
            "started_at",
            "finished_at",
        ),
    ),
    # Append-only for agents: INSERT, and the id back (INSERT ... RETURNING needs SELECT on it).
    Table("console.AuditEvent", own=HOST, select=False, select_columns=("id",), insert=True),
    Table("containers.Container", own=HOST, insert=True, delete=True, update=("*",)),
    Table(
        "containers.ContainerHook",
        own="container_id IN (SELECT id FROM containers_container)",
        insert=True,
        delete=True,
        update=("*",),
    ),
    # A removed container's tickets go with it (Django deletes them first).
    Table(
        "containers.TerminalTicket",
        own="container_id IN (SELECT id FROM containers_container)",
        select=False,
        select_columns=("id", "container_id"),
        delete=True,
    ),
    Table(
        "containers.FileBlob",
        own="operation_id IN (SELECT id FROM console_operation)",
        insert=True,
        select=False,
        select_columns=("id", "operation_id"),
    ),
    Table("storage.Pool", own=HOST, insert=True, delete=True, update=("*",)),
    Table("storage.LoopDevice", own=HOST, insert=True, delete=True, update=("*",)),
    Table("storage.HostStorage", own=HOST, insert=True, delete=True, update=("*",)),
    Table("networks.Network", own=HOST, insert=True, delete=True, update=("*",)),
)


def role_name(host_id: int) -> str:
    return f"{ROLE_PREFIX}{int(host_id)}"


def host_id_sql() -> str:
    """The function the policies call: the host id in the name of the role logged in."""
    return f"""
CREATE OR REPLACE FUNCTION console_agent_host() RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN current_user ~ '^{ROLE_PREFIX}[0-9]+$'
              THEN substr(current_user, {len(ROLE_PREFIX) + 1})::bigint END
$$"""


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _db_table(label: str) -> str:
    from django.apps import apps

    return apps.get_model(label)._meta.db_table


def setup_statements() -> list[str]:
    """The group role, its privileges and the policies (idempotent: every run sets them anew)."""
    db = connection.settings_dict["NAME"]
    group = _quote(GROUP)
    # Only constants and quoted identifiers are put into these statements.
    exists = f"SELECT 1 FROM pg_roles WHERE rolname = '{GROUP}'"  # noqa: S608 (a constant)
    out = [
        f"DO $$ BEGIN IF NOT EXISTS ({exists}) THEN CREATE ROLE {group} NOLOGIN; END IF; END $$",
        f"GRANT CONNECT ON DATABASE {_quote(db)} TO {group}",
        f"GRANT USAGE ON SCHEMA public TO {group}",
        host_id_sql(),
        "REVOKE ALL ON FUNCTION console_agent_host() FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION console_agent_host() TO {group}",
    ]
    for table in TABLES:
        name = _quote(_db_table(table.model))
        out.append(f"REVOKE ALL ON {name} FROM {group}")
        if table.select:
            out.append(f"GRANT SELECT ON {name} TO {group}")
        elif table.select_columns:
            out.append(f"GRANT SELECT ({', '.join(map(_quote, table.select_columns))}) ON {name} TO {group}")
        if table.insert:
            out.append(f"GRANT INSERT ON {name} TO {group}")
        if table.delete:
            out.append(f"GRANT DELETE ON {name} TO {group}")
        if table.update == ("*",):
            out.append(f"GRANT UPDATE ON {name} TO {group}")
        elif table.update:
            out.append(f"GRANT UPDATE ({', '.join(map(_quote, table.update))}) ON {name} TO {group}")
        out.append(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
        out.append(f"DROP POLICY IF EXISTS console_agent_own ON {name}")
        out.append(
            f"CREATE POLICY console_agent_own ON {name} TO {group} "
            f"USING ({table.own}) WITH CHECK ({table.own})"
        )
    return out


def setup() -> None:
    with connection.cursor() as cursor:
        for statement in setup_statements():
            cursor.execute(statement)


def role_exists(host_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role_name(host_id)])
        return cursor.fetchone() is not None


def create_or_reset(host_id: int, password: str) -> str:
    """The host's login role with ``password`` (created, or its password replaced and logins
    allowed again); returns its name."""
    setup()
    role = role_name(host_id)
    with connection.cursor() as cursor:
        verb = "ALTER" if role_exists(host_id) else "CREATE"
        # Utility statements take no parameters: the password is quoted by the server.
        cursor.execute("SELECT quote_literal(%s)", [password])
        literal = cursor.fetchone()[0]
        cursor.execute(
            f"{verb} ROLE {_quote(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS INHERIT PASSWORD {literal}"
        )
        cursor.execute(f"GRANT {_quote(GROUP)} TO {_quote(role)}")
    return role


def revoke(host_id: int) -> int:
    """Logins refused from now on (NOLOGIN, no password) and the role's open connections ended;
    returns how many were ended."""
    role = role_name(host_id)
    if not role_exists(host_id):
        return 0
    if connection.in_atomic_block:
        # NOLOGIN would take effect only at commit: a session ended now could log in again.
        raise RuntimeError("revoke an agent's role outside a transaction")
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER ROLE {_quote(role)} NOLOGIN PASSWORD NULL")
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        return int(cursor.fetchone()[0])


def drop(host_id: int) -> None:
    """Remove the role (its connections ended first)."""
    if not role_exists(host_id):
        return
    revoke(host_id)
    role = _quote(role_name(host_id))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")


def database_url(role: str, password: str) -> str:
    """The URL an agent connects with: the console's own server and database, as ``role``."""
    from urllib.parse import quote

    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    user, secret, name = (quote(value, safe="") for value in (role, password, s["NAME"]))
    return f"postgres://{user}:{secret}@{host}:{port}/{name}"


def teardown() -> None:
    """Undo :func:`setup` (policies, row-level security, privileges, the group role) once no
    host role is left: for tests, and a console going back to one machine."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = %s",
            [GROUP],
        )
        if cursor.fetchone()[0]:
            raise RuntimeError("host roles are left: drop them first")
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [GROUP])
        if cursor.fetchone() is None:
            return
        for table in TABLES:
            name = _quote(_db_table(table.model))
            cursor.execute(f"DROP POLICY IF EXISTS console_agent_own ON {name}")
            cursor.execute(f"ALTER TABLE {name} DISABLE ROW LEVEL SECURITY")
        cursor.execute(f"DROP OWNED BY {_quote(GROUP)}")
        cursor.execute("DROP FUNCTION IF EXISTS console_agent_host()")
        cursor.execute(f"DROP ROLE {_quote(GROUP)}")

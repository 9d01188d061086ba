"""The Operations list reads a page of rows newest first through an index, not by sorting the
whole operations table (SQLite's query plan; the same index serves PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.models import Operation


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")
def test_the_list_page_does_not_sort_the_table(client, superuser, host):
    Operation.objects.bulk_create(
        Operation(kind="container.start", host=host, target=f"t{i}", lock_key=f"k{i}", status="succeeded")
        for i in range(200)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client.force_login(superuser)
    with CaptureQueriesContext(connection) as seen:
        assert client.get(reverse("operation-list")).status_code == 200
    (rows,) = [
        q["sql"]
        for q in seen.captured_queries
        if 'FROM "console_operation"' in q["sql"] and "LIMIT" in q["sql"] and "COUNT(" not in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {rows}")
        plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
    assert "operation_newest_first" in plan and "TEMP B-TREE" not in plan, plan


def test_the_storage_and_networks_boxes_read_each_kind_from_its_index(host, make_user):
    """Operations.newest_of_kinds: the newest of the given kinds, newest first, of the hosts in
    the queryset only; each kind's query is read from operation_kind_newest on SQLite (the
    planner, given ``kind IN (...)``, walked the whole table when those kinds were rare)."""
    from console.models import Host

    other = Host.objects.create(slug="other", name="other")
    rows = [
        Operation(
            kind=kind,
            host=where,
            target=f"{kind}-{i}",
            lock_key=f"{kind}-{i}-{where.slug}",
            status="succeeded",
        )
        for i in range(8)
        for kind in ("container.start", "storage.loop.create", "storage.pool.create")
        for where in (host, other)
    ]
    Operation.objects.bulk_create(rows)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    with CaptureQueriesContext(connection) as seen:
        got = Operation.objects.filter(host=host).newest_of_kinds(
            ["storage.loop.create", "storage.pool.create"], 5
        )
    ours = [op for op in Operation.objects.filter(host=host, kind__startswith="storage.")][:5]
    assert [op.pk for op in got] == [op.pk for op in ours] and len(got) == 5
    assert {op.host_id for op in got} == {host.pk} and all(op.kind.startswith("storage.") for op in got)
    if connection.vendor == "sqlite":
        per_kind = [
            q["sql"] for q in seen.captured_queries if "LIMIT 5" in q["sql"] and '"kind" =' in q["sql"]
        ]
        assert len(per_kind) == 2, seen.captured_queries
        for sql in per_kind:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
                plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
            assert "operation_kind_newest" in plan and "TEMP B-TREE" not in plan, plan

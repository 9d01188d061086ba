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

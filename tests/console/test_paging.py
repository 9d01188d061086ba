"""Long lists count their rows up to a limit (then "more than"), so a page costs the same on a
table of 100,000 rows; pages past the limit stay reachable page by page."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.models import AuditEvent


@pytest.fixture
def rows(db, host, settings, monkeypatch):
    settings.PAGE_SIZE = 10
    monkeypatch.setattr("console.views.COUNT_LIMIT", 100)
    AuditEvent.objects.bulk_create(
        AuditEvent(action="container.start", result="accepted", host=host, target=f"container t/{i:03d}")
        for i in range(250)
    )


def pagination(client, path: str) -> str:
    body = client.get(path).content.decode()
    found = re.search(r"<span>(Page [^<]*)</span>", body)
    assert found, body[-2000:]
    return found.group(1)


def test_the_count_stops_at_the_limit_and_says_more(client, superuser, rows):
    client.force_login(superuser)
    with CaptureQueriesContext(connection) as ctx:
        # Ten pages past page 1, rounded up to the limit's multiple.
        assert pagination(client, "/audit/") == "Page 1 of 20+ (more than 200)"
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 201" in counts[0] and "ORDER BY" not in counts[0]


def test_a_deep_page_counts_ten_pages_past_it_and_the_last_page_is_exact(client, superuser, rows):
    client.force_login(superuser)
    assert pagination(client, "/audit/?page=10") == "Page 10 of 20+ (more than 200)"
    assert pagination(client, "/audit/?page=18") == "Page 18 of 25 (250 in all)"
    # Past the end: the last page, counted exactly.
    assert pagination(client, "/audit/?page=900") == "Page 25 of 25 (250 in all)"
    body = client.get("/audit/?page=25").content.decode()
    assert "container t/000" in body and "container t/010" not in body


def test_a_short_list_is_counted_exactly(client, superuser, rows):
    client.force_login(superuser)
    assert pagination(client, "/audit/?result=accepted&q=t/1") == "Page 1 of 10 (100 in all)"


def test_a_deep_page_reads_its_keys_through_an_index_then_its_rows_in_order(client, viewer, rows):
    """A viewer's rows are filtered with an OR (their own rows, or their hosts' non-refusals): the
    page's keys are read first, and on SQLite the offset is skipped in the covering index
    audit_newest_first instead of reading (and joining) every row before the page."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client.force_login(viewer)
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/audit/?page=7").content.decode()
    # Newest first: page 7 of 10 rows holds t/189 down to t/180, in that order.
    shown = re.findall(r"container t/(\d{3})", body)
    assert shown == [f"{i:03d}" for i in range(189, 179, -1)], shown
    (keys,) = [q["sql"] for q in ctx.captured_queries if "OFFSET 60" in q["sql"]]
    assert "JOIN" not in keys and keys.startswith('SELECT "console_auditevent"."id" AS "pk" FROM'), keys
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {keys}")
            plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
        assert "COVERING INDEX audit_newest_first" in plan and "TEMP B-TREE" not in plan, plan

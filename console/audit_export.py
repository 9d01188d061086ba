"""The audit export (CSV and JSON), streamed: one query read in chunks, no row objects, no joins per row.

The response starts with the first chunk, and memory holds one chunk at a time whatever the
number of rows. Under ASGI (uvicorn) the body is an asynchronous iterator (Django would buffer a
synchronous one whole before sending) that reads each batch in a sync thread; under WSGI a plain
iterator.

CSV cells that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) get a leading ``'`` in every column: user names, targets, messages and
parameters are typed by users.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

# Export column -> the values() field it is read from ("shown_host_id" is annotated by the caller:
# the host only where the reader may see it; the encoder names it).
COLUMNS = {
    "id": "id",
    "time": "created_at",
    "actor": "actor_name",
    "ip": "ip",
    "request_id": "request_id",
    "client_request_id": "client_request_id",
    "action": "action",
    "host": "shown_host_id",
    "target": "target",
    "params": "params",
    "before": "before",
    "after": "after",
    "result": "result",
    "message": "message",
    "operation": "operation_id",
    "operation_status": "operation__status",
}
CHUNK_ROWS = 2000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TIME, _HOST = list(COLUMNS).index("time"), list(COLUMNS).index("host")


def csv_cell(value: Any) -> str:
    """A value as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        text = ""
    elif isinstance(value, (dict, list)):
        text = json.dumps(value)
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class _Encoder:
    """Turns batches of value tuples into the bytes of one format."""

    def __init__(self, fmt: str, limit: int, host_slugs: dict[int, str]) -> None:
        self.fmt = fmt
        self.limit = limit
        self.host_slugs = host_slugs
        self.count = 0

    def _named(self, row: tuple) -> list:
        values = list(row)
        values[_HOST] = self.host_slugs.get(values[_HOST])
        return values

    def start(self) -> bytes:
        if self.fmt == "csv":
            return self._csv([list(COLUMNS)])
        return b'{"events": ['

    def rows(self, batch: list[tuple]) -> bytes:
        first = self.count == 0
        self.count += len(batch)
        if self.fmt == "csv":
            return self._csv([[csv_cell(v) for v in self._named(row)] for row in batch])
        items = (json.dumps(dict(zip(COLUMNS, self._json_row(row), strict=True))) for row in batch)
        return (("" if first else ", ") + ", ".join(items)).encode()

    def end(self) -> bytes:
        if self.fmt == "csv":
            return b""
        return f'], "truncated": {json.dumps(self.count >= self.limit)}}}'.encode()

    def _json_row(self, row: tuple) -> list:
        values = self._named(row)
        values[_TIME] = values[_TIME].isoformat()
        return values

    @staticmethod
    def _csv(rows: Iterable[list]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue().encode()


def _batches(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _sync_body(rows: QuerySet, encoder: _Encoder) -> Iterator[bytes]:
    yield encoder.start()
    for batch in _batches(rows.iterator(chunk_size=CHUNK_ROWS)):
        yield encoder.rows(batch)
    yield encoder.end()


def _next_batch(batches: Iterator[list[tuple]]) -> list[tuple] | None:
    return next(batches, None)


async def _async_body(rows: QuerySet, encoder: _Encoder) -> AsyncIterator[bytes]:
    yield encoder.start()
    # Each batch is read in the request's sync thread (its database connection); the event loop
    # only sends. (QuerySet.aiterator runs a values_list query in the loop itself, which Django
    # refuses.)
    batches = _batches(rows.iterator(chunk_size=CHUNK_ROWS))
    while (batch := await sync_to_async(_next_batch, thread_sensitive=True)(batches)) is not None:
        yield encoder.rows(batch)
    yield encoder.end()


def export_response(
    request: HttpRequest, queryset: QuerySet, fmt: str, limit: int, host_slugs: dict[int, str]
) -> StreamingHttpResponse:
    """Stream the first ``limit`` audit rows of ``queryset`` as ``fmt``.

    ``queryset`` has ``shown_host_id`` annotated; ``host_slugs`` names those hosts.
    """
    rows = queryset.values_list(*COLUMNS.values())[:limit]
    encoder = _Encoder(fmt, limit, host_slugs)
    body = _async_body(rows, encoder) if isinstance(request, ASGIRequest) else _sync_body(rows, encoder)
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    return response

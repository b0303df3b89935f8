"""The portal's CSV downloads; amounts, durations and callers read as coobill.formatting says."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import Any

from fastapi.responses import Response, StreamingResponse

from coobill.formatting import caller, csv_cell, duration, money

__all__ = ["caller", "csv_download", "csv_stream", "duration", "money"]


CSV_TYPE = "text/csv; charset=utf-8"


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _csv_text(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """Rows as CSV whose cells cannot run as spreadsheet formulas; with the header, the BOM
    first, so Excel reads UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header is not None:
        out.write("\ufeff")
        writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


def csv_download(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A small CSV file, built whole."""
    return Response(_csv_text(rows, header), media_type=CSV_TYPE, headers=_attachment(filename))


def csv_stream(
    filename: str, header: Sequence[str], batches: AsyncIterable[Iterable[Sequence[Any]]]
) -> StreamingResponse:
    """A CSV file of any length, sent a batch of rows at a time as they are read: the
    portal's memory holds one batch, not the file."""

    async def chunks() -> AsyncIterator[bytes]:
        yield _csv_text((), header).encode()
        async for rows in batches:
            yield _csv_text(rows).encode()

    return StreamingResponse(chunks(), media_type=CSV_TYPE, headers=_attachment(filename))

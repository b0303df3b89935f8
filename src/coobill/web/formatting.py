"""How amounts, durations and extensions read in the portal and its CSV files."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from decimal import Decimal
from typing import Any

from fastapi.responses import Response, StreamingResponse

from coobill.cli.output import csv_cell
from coobill.money import fmt


def money(value: Decimal | None, symbol: str) -> str:
    """US$1.2000, -¥3.5000: four places, as the appliance's dialogs show amounts."""
    if value is None:
        return ""
    text = fmt(value)
    return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"


def duration(seconds: int | None) -> str:
    """mm:ss, or h:mm:ss from an hour on (the same text as the CLI's)."""
    hours, rest = divmod(max(int(seconds or 0), 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def caller(name: str, extension: str) -> str:
    """name[ext], as the appliance's records show a caller."""
    return f"{name or extension}[{extension}]"


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

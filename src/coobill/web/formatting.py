"""How amounts, durations and extensions read in the portal and its CSV files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from fastapi.responses import Response

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


def csv_download(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV file whose cells cannot run as spreadsheet formulas; BOM so Excel reads UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )

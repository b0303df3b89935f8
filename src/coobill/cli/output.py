"""Rendering rows for the terminal: aligned text, JSON, or CSV safe against formula injection."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from coobill.formatting import FORMULA_START, csv_cell, plain

__all__ = ["FORMULA_START", "csv_cell", "display_width", "emit", "plain", "to_csv", "to_json",
           "to_table"]


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


def to_json(data: Any) -> str:
    return json.dumps(plain(data), ensure_ascii=False, indent=2)


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide and full-width characters (a
    Chinese name) take two, combining marks none (Unicode UAX #11)."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def to_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(plain(r.get(c)) if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([display_width(c)] + [display_width(row[i]) for row in cells])
              for i, c in enumerate(columns)]
    lines = [
        "  ".join(_pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in [columns, *cells]
    ]
    return "\n".join(lines)


def emit(args: argparse.Namespace, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Rows as the command's --json or --csv asked, else as an aligned table."""
    if getattr(args, "json", False):
        print(to_json(rows))
    elif getattr(args, "csv", False):
        sys.stdout.write(to_csv(rows, columns))
    else:
        print(to_table(rows, columns))

"""Spreadsheet-safe exports: text that a spreadsheet would run as a formula is written as plain text.

A cell such as `=HYPERLINK("http://x","click")` (say, a display name) opens as a live formula in Excel,
LibreOffice or Google Sheets. Every text cell that starts with = + - @, a tab or a carriage return gets a
leading single quote, which spreadsheets read as "this is text" (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with a leading ' when it is text a spreadsheet would take for a formula; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose rows go through safe_cell."""

    def __init__(self, fh: Any, **fmtparams: Any) -> None:
        self._writer = csv.writer(fh, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV document: the header row, then the rows, every cell spreadsheet-safe."""
    buf = io.StringIO()
    writer = SafeCsvWriter(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()

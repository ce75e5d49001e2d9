"""Spreadsheet-safe CSV: text a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io

import pytest

from services.reports.exports import SafeCsvWriter, csv_text, safe_cell


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x","click")', "=1+1", "+1", "-1", "@x", "@SUM(A1:A2)", "\tx", "\rx", "-", "="],
)
def test_formula_starts_get_a_quote(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "text", ["Colin Powell", "Jean-Luc Picard", "a=b", "O'Brien", "'=already text", "", " =1", "2026-03-11", "Ана"]
)
def test_other_text_is_untouched(text: str) -> None:
    assert safe_cell(text) == text


@pytest.mark.parametrize("value", [-1, -2.5, 0, 3, None, True])
def test_non_text_values_are_untouched(value: object) -> None:
    assert safe_cell(value) is value


def test_the_writer_and_csv_text_make_every_cell_safe() -> None:
    rows = [["=cmd|' /C calc'!A0", "Ann", -3], ["+1", "@x", "ok"]]
    text = csv_text(["name", "=header", "n"], rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["name", "'=header", "n"],
        ["'=cmd|' /C calc'!A0", "Ann", "-3"],
        ["'+1", "'@x", "ok"],
    ]
    buf = io.StringIO()
    SafeCsvWriter(buf).writerows([["\tx", "y"]])
    assert list(csv.reader(io.StringIO(buf.getvalue()))) == [["'\tx", "y"]]

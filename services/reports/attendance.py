"""The attendance report as a spreadsheet-safe CSV file."""

from __future__ import annotations

from datetime import date, datetime, tzinfo

from services.attendance.events import daily_report, site_tz
from services.context import ServiceContext
from services.reports.exports import csv_text

REPORT_COLUMNS = ("day", "person_id", "display_name", "first_seen", "last_seen", "events", "timezone")


def report_csv(
    ctx: ServiceContext,
    start: date,
    end: date,
    source: str | None = None,
    person_id: str | None = None,
    tz: tzinfo | None = None,
) -> str:
    """The daily report as CSV: days and times in the site's zone (or `tz`), named in the `timezone` column; the
    times as "2026-03-11 04:10:00+05:30" (local time and its UTC offset). Spreadsheet-safe
    (services.reports.exports)."""
    zone = site_tz(ctx, tz)
    rows = [
        (r.day.isoformat(), r.person_id, r.display_name, _time(r.first_seen), _time(r.last_seen), r.count, str(zone))
        for r in daily_report(ctx, start, end, source, person_id, tz=zone)
    ]
    return csv_text(REPORT_COLUMNS, rows)


def _time(t: datetime) -> str:
    return t.isoformat(sep=" ", timespec="seconds")

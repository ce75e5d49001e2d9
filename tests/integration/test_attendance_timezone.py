"""Attendance days are the site's days (settings.timezone), on a real MongoDB-protocol server. Every time here is
explicit: nothing depends on the wall clock or on this machine's time zone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.attendance.events import (
    daily_report,
    day_range,
    events,
    local_day,
    record_event,
    site_today,
)
from services.config import Settings
from services.context import ServiceContext, open_context
from services.registry.persons import PersonInput, create_or_get_person
from services.reports.attendance import REPORT_COLUMNS, report_csv
from services.reports.exports import FORMULA_STARTS
from services.reports.overview import overview
from tests.integration.conftest import isolated_settings

KOLKATA = ZoneInfo("Asia/Kolkata")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def site(infra: Settings, tmp_path: Path) -> ServiceContext:
    """A context on its own database, no face model loaded; the site is in Asia/Kolkata (UTC+05:30)."""
    return open_context(isolated_settings(infra, tmp_path, timezone="Asia/Kolkata"))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def log(ctx: ServiceContext, person: str | None, when: datetime, source: str = "gate") -> None:
    assert record_event(ctx, person, person and person.upper(), source, 0.7, when=when, cooldown_s=0) is not None


def test_an_early_arrival_in_kolkata_is_on_its_local_day(site: ServiceContext) -> None:
    log(site, "p1", utc(2026, 3, 10, 22, 40))  # 04:10 on 03-11 in Kolkata
    log(site, "p1", utc(2026, 3, 11, 12, 0))  # 17:30 on 03-11
    log(site, "p1", utc(2026, 3, 10, 18, 0))  # 23:30 on 03-10
    (row,) = daily_report(site, date(2026, 3, 11), date(2026, 3, 11))
    assert (row.day, row.count) == (date(2026, 3, 11), 2)
    assert row.first_seen == utc(2026, 3, 10, 22, 40) and row.last_seen == utc(2026, 3, 11, 12, 0)
    assert (row.first_seen.hour, row.first_seen.minute, row.first_seen.utcoffset()) == (4, 10, timedelta(hours=5.5))
    assert (row.last_seen.hour, row.last_seen.minute) == (17, 30)
    assert [e.time for e in events(site, date(2026, 3, 11), date(2026, 3, 11))] == [
        utc(2026, 3, 11, 12, 0),
        utc(2026, 3, 10, 22, 40),
    ]
    assert [r.count for r in daily_report(site, date(2026, 3, 10), date(2026, 3, 10))] == [1]
    # The same events by UTC days, given explicitly: the 04:10 arrival was still 03-10 in UTC.
    assert [(r.day, r.count) for r in daily_report(site, date(2026, 3, 10), date(2026, 3, 11), tz=UTC)] == [
        (date(2026, 3, 10), 2),
        (date(2026, 3, 11), 1),
    ]


def test_a_late_evening_in_los_angeles_is_the_previous_day(site: ServiceContext) -> None:
    log(site, "p1", utc(2026, 3, 11, 6, 30))  # 23:30 PDT on 03-10
    (row,) = daily_report(site, date(2026, 3, 10), date(2026, 3, 11), tz=LOS_ANGELES)
    assert row.day == date(2026, 3, 10)
    assert (row.first_seen.hour, row.first_seen.minute, row.first_seen.utcoffset()) == (23, 30, timedelta(hours=-7))
    assert events(site, date(2026, 3, 11), date(2026, 3, 11), tz=LOS_ANGELES) == []
    assert local_day(utc(2026, 3, 11, 6, 30), LOS_ANGELES) == date(2026, 3, 10)


def test_a_dst_day_has_its_own_length(site: ServiceContext) -> None:
    spring = date(2026, 3, 8)  # clocks go forward in Los Angeles: 23 hours, 00:00 PST to 24:00 PDT
    lo, hi = day_range(spring, spring, LOS_ANGELES)
    assert (lo, hi, hi - lo) == (utc(2026, 3, 8, 8), utc(2026, 3, 9, 7), timedelta(hours=23))
    autumn = date(2026, 11, 1)  # clocks go back: 25 hours
    lo, hi = day_range(autumn, autumn, LOS_ANGELES)
    assert (lo, hi, hi - lo) == (utc(2026, 11, 1, 7), utc(2026, 11, 2, 8), timedelta(hours=25))
    inside = [utc(2026, 3, 8, 8, 0), utc(2026, 3, 8, 12, 0), utc(2026, 3, 9, 6, 59)]
    outside = [utc(2026, 3, 8, 7, 59), utc(2026, 3, 9, 7, 0)]
    for t in inside + outside:
        log(site, "p1", t)
    found = events(site, spring, spring, tz=LOS_ANGELES)
    assert sorted(e.time for e in found) == inside
    (row,) = daily_report(site, spring, spring, tz=LOS_ANGELES)
    assert (row.count, f"{row.first_seen:%H:%M %Z}", f"{row.last_seen:%H:%M %Z}") == (3, "00:00 PST", "23:59 PDT")
    # The week across the change: every event on its own local day, none lost between days.
    week = daily_report(site, date(2026, 3, 5), date(2026, 3, 11), tz=LOS_ANGELES)
    assert [(r.day, r.count) for r in week] == [(date(2026, 3, 7), 1), (spring, 3), (date(2026, 3, 9), 1)]


def test_the_csv_names_its_zone_and_gives_local_times(site: ServiceContext) -> None:
    log(site, "p1", utc(2026, 3, 10, 22, 40))
    log(site, "p1", utc(2026, 3, 11, 12, 0))
    log(site, "p2", utc(2026, 3, 11, 3, 0), source="lobby")
    rows = list(csv.reader(io.StringIO(report_csv(site, date(2026, 3, 11), date(2026, 3, 11)))))
    assert rows[0] == list(REPORT_COLUMNS) and "timezone" in rows[0]
    assert rows[1:] == [
        ["2026-03-11", "p1", "P1", "2026-03-11 04:10:00+05:30", "2026-03-11 17:30:00+05:30", "2", "Asia/Kolkata"],
        ["2026-03-11", "p2", "P2", "2026-03-11 08:30:00+05:30", "2026-03-11 08:30:00+05:30", "1", "Asia/Kolkata"],
    ]
    la = list(csv.reader(io.StringIO(report_csv(site, date(2026, 3, 10), date(2026, 3, 10), tz=LOS_ANGELES))))
    assert [(r[0], r[1], r[3], r[4], r[6]) for r in la[1:]] == [
        ("2026-03-10", "p1", "2026-03-10 15:40:00-07:00", "2026-03-10 15:40:00-07:00", "America/Los_Angeles"),
        ("2026-03-10", "p2", "2026-03-10 20:00:00-07:00", "2026-03-10 20:00:00-07:00", "America/Los_Angeles"),
    ]


def test_a_formula_display_name_is_text_in_the_csv(site: ServiceContext) -> None:
    name = '=HYPERLINK("http://x","click")'
    person, created = create_or_get_person(site, PersonInput(name))
    assert created and person.display_name == name
    assert record_event(site, person.id, person.display_name, "gate", 0.9, when=utc(2026, 3, 11, 5, 0)) is not None
    assert record_event(site, "p2", "-1 @gate", "@lobby", 0.9, when=utc(2026, 3, 11, 6, 0)) is not None
    rows = list(csv.reader(io.StringIO(report_csv(site, date(2026, 3, 11), date(2026, 3, 11)))))
    assert [r[2] for r in rows[1:]] == ["'-1 @gate", "'" + name]
    assert not any(cell.startswith(FORMULA_STARTS) for row in rows for cell in row)


def test_today_in_the_overview_is_the_site_day(site: ServiceContext) -> None:
    now = utc(2026, 3, 11, 1, 0)  # 06:30 on 03-11 in Kolkata
    assert site_today(site, now=now) == date(2026, 3, 11)
    assert site_today(site, now=now, tz=LOS_ANGELES) == date(2026, 3, 10)
    log(site, "p1", utc(2026, 3, 10, 18, 0))  # 23:30 on 03-10: yesterday
    log(site, "p1", utc(2026, 3, 10, 22, 40))  # 04:10 on 03-11
    log(site, "p2", utc(2026, 3, 11, 12, 0))  # 17:30
    log(site, None, utc(2026, 3, 11, 18, 29))  # 23:59 on 03-11
    log(site, None, utc(2026, 3, 11, 18, 31))  # 00:01 on 03-12: tomorrow
    ov = overview(site, now=now)
    assert (ov.events_today, ov.unknown_today) == (3, 1)
    by_utc = overview(site, now=now, tz=UTC)  # the UTC day 03-11 holds other events
    assert (by_utc.events_today, by_utc.unknown_today) == (3, 2)


def test_the_timezone_setting_is_validated_and_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEREG_TIMEZONE", raising=False)
    assert Settings(_env_file=None, timezone="Asia/Kolkata").tz == KOLKATA
    for bad in ("Mars/Olympus", "+05:30", "../etc/passwd", "/usr/share/zoneinfo/UTC"):
        with pytest.raises(ValidationError, match="not an IANA time zone name"):
            Settings(_env_file=None, timezone=bad)
    monkeypatch.setenv("FACEREG_TIMEZONE", "America/Los_Angeles")
    assert Settings(_env_file=None).tz == LOS_ANGELES
    monkeypatch.delenv("FACEREG_TIMEZONE")
    for tz_env in ("Europe/Berlin", ":Europe/Berlin", "/usr/share/zoneinfo/Europe/Berlin"):
        monkeypatch.setenv("TZ", tz_env)
        assert Settings(_env_file=None).timezone == "Europe/Berlin"
    monkeypatch.setenv("TZ", "IST-5:30")  # a POSIX rule, not a name: the machine's zone file, else UTC
    assert ZoneInfo(Settings(_env_file=None).timezone)

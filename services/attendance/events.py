"""Attendance: recognised or unknown faces seen by a source, with a per-(person, source) cooldown."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import cv2

from model.types import ImageArray
from services.context import ServiceContext
from services.storage.records import AttendanceEvent, as_utc, utcnow


def record_event(
    ctx: ServiceContext,
    person_id: str | None,
    display_name: str | None,
    source: str,
    similarity: float,
    snapshot: ImageArray | None = None,
    when: datetime | None = None,
    cooldown_s: float | None = None,
) -> AttendanceEvent | None:
    """Store an event, or None when the same person (or an unknown face) was logged at this source
    within the cooldown. Unknown faces share one cooldown per source."""
    when = as_utc(when) if when else utcnow()
    cooldown = ctx.settings.attendance_cooldown_s if cooldown_s is None else cooldown_s
    recent = ctx.db.attendance.find_one(
        {"person_id": person_id, "source": source, "time": {"$gt": when - timedelta(seconds=cooldown), "$lte": when}}
    )
    if recent is not None:
        return None
    event_id = uuid.uuid4().hex
    path = _save_snapshot(ctx, source, when, event_id, snapshot) if snapshot is not None else None
    event = AttendanceEvent(event_id, person_id, display_name, source, when, float(similarity), path)
    ctx.db.attendance.insert_one(event.to_doc())
    return event


def _save_snapshot(ctx: ServiceContext, source: str, when: datetime, event_id: str, image: ImageArray) -> str:
    folder = ctx.settings.data_dir / "snapshots" / _safe(source) / when.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{event_id}.jpg"
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if ok:
        path.write_bytes(jpg.tobytes())
    return str(path)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60] or "source"


# Days are the site's days (settings.timezone); times are stored in UTC. Every function takes the zone from
# ctx.settings unless given `tz`, and "now" from the clock unless given `now`.


def site_tz(ctx: ServiceContext, tz: tzinfo | None = None) -> tzinfo:
    """`tz`, else the site's time zone."""
    return tz if tz is not None else ctx.settings.tz


def local_day(when: datetime, tz: tzinfo) -> date:
    """The day `when` (UTC if naive) falls on in `tz`."""
    return as_utc(when).astimezone(tz).date()


def site_today(ctx: ServiceContext, now: datetime | None = None, tz: tzinfo | None = None) -> date:
    """Today at the site: the day `now` (default: the clock) falls on in its time zone."""
    return local_day(now if now is not None else utcnow(), site_tz(ctx, tz))


def day_range(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC times [from, to) that cover the days `start` to `end` inclusive in `tz`: from local midnight to
    local midnight, each placed in the zone on its own day, so a DST day has its 23 or 25 hours."""
    return _midnight(start, tz), _midnight(end + timedelta(days=1), tz)


def _midnight(d: date, tz: tzinfo) -> datetime:
    # A midnight that does not exist (a DST gap at 00:00) takes the offset before the gap: the day's first instant.
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def events(
    ctx: ServiceContext,
    start: date,
    end: date,
    person_id: str | None = None,
    source: str | None = None,
    unknown_only: bool = False,
    tz: tzinfo | None = None,
) -> list[AttendanceEvent]:
    """Events from `start` to `end` inclusive (days in the site's zone, or `tz`), newest first; times in UTC."""
    lo, hi = day_range(start, end, site_tz(ctx, tz))
    query: dict[str, Any] = {"time": {"$gte": lo, "$lt": hi}}
    if person_id:
        query["person_id"] = person_id
    if unknown_only:
        query["person_id"] = None
        query["erased"] = {"$ne": True}
    if source:
        query["source"] = source
    return [AttendanceEvent.from_doc(d) for d in ctx.db.attendance.find(query).sort("time", -1)]


@dataclass(frozen=True, slots=True)
class DailyPresence:
    day: date  # in the report's time zone
    person_id: str
    display_name: str
    first_seen: datetime  # aware, in the report's time zone
    last_seen: datetime
    count: int


def daily_report(
    ctx: ServiceContext,
    start: date,
    end: date,
    source: str | None = None,
    person_id: str | None = None,
    tz: tzinfo | None = None,
) -> list[DailyPresence]:
    """Per day (in the site's zone, or `tz`) and known person: first and last seen (local times), how many events."""
    zone = site_tz(ctx, tz)
    rows: dict[tuple[date, str], DailyPresence] = {}
    for e in events(ctx, start, end, person_id=person_id, source=source, tz=zone):
        if e.person_id is None:
            continue
        local = e.time.astimezone(zone)
        key = (local.date(), e.person_id)
        cur = rows.get(key)
        rows[key] = (
            DailyPresence(key[0], e.person_id, e.display_name or "", local, local, 1)
            if cur is None
            else replace(
                cur, first_seen=min(cur.first_seen, local), last_seen=max(cur.last_seen, local), count=cur.count + 1
            )
        )
    return sorted(rows.values(), key=lambda r: (r.day, r.display_name))


def sources(ctx: ServiceContext) -> list[str]:
    """Every camera or stream name that has logged an event."""
    return sorted(str(s) for s in ctx.db.attendance.distinct("source"))

"""Attendance: recognised or unknown faces seen by a source, with a per-(person, source) cooldown."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cv2

from model.types import ImageArray
from services.context import ServiceContext
from services.records import as_utc, utcnow


@dataclass(frozen=True, slots=True)
class AttendanceEvent:
    id: str
    person_id: str | None  # None: an unknown face
    display_name: str | None
    source: str
    time: datetime
    similarity: float
    snapshot_path: str | None

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "person_id": self.person_id,
            "display_name": self.display_name,
            "source": self.source,
            "time": self.time,
            "similarity": self.similarity,
            "snapshot_path": self.snapshot_path,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> AttendanceEvent:
        return cls(
            doc["_id"],
            doc.get("person_id"),
            doc.get("display_name"),
            doc["source"],
            as_utc(doc["time"]),
            float(doc["similarity"]),
            doc.get("snapshot_path"),
        )


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


def events(
    ctx: ServiceContext,
    start: date,
    end: date,
    person_id: str | None = None,
    source: str | None = None,
    unknown_only: bool = False,
) -> list[AttendanceEvent]:
    """Events from `start` to `end` inclusive (UTC days), newest first."""
    query: dict[str, Any] = {"time": {"$gte": _day_start(start), "$lt": _day_start(end) + timedelta(days=1)}}
    if person_id:
        query["person_id"] = person_id
    if unknown_only:
        query["person_id"] = None
        query["erased"] = {"$ne": True}
    if source:
        query["source"] = source
    return [AttendanceEvent.from_doc(d) for d in ctx.db.attendance.find(query).sort("time", -1)]


def _day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DailyPresence:
    day: date
    person_id: str
    display_name: str
    first_seen: datetime
    last_seen: datetime
    count: int


def daily_report(
    ctx: ServiceContext, start: date, end: date, source: str | None = None, person_id: str | None = None
) -> list[DailyPresence]:
    """Per UTC day and known person: first and last seen, and how many events."""
    rows: dict[tuple[date, str], DailyPresence] = {}
    for e in events(ctx, start, end, person_id=person_id, source=source):
        if e.person_id is None:
            continue
        key = (e.time.date(), e.person_id)
        cur = rows.get(key)
        if cur is None:
            rows[key] = DailyPresence(key[0], e.person_id, e.display_name or "", e.time, e.time, 1)
        else:
            rows[key] = DailyPresence(
                key[0],
                e.person_id,
                cur.display_name,
                min(cur.first_seen, e.time),
                max(cur.last_seen, e.time),
                cur.count + 1,
            )
    return sorted(rows.values(), key=lambda r: (r.day, r.display_name))


def report_csv(
    ctx: ServiceContext, start: date, end: date, source: str | None = None, person_id: str | None = None
) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["day", "person_id", "display_name", "first_seen", "last_seen", "events"])
    for r in daily_report(ctx, start, end, source, person_id):
        writer.writerow(
            [r.day.isoformat(), r.person_id, r.display_name, r.first_seen.isoformat(), r.last_seen.isoformat(), r.count]
        )
    return buf.getvalue()


def sources(ctx: ServiceContext) -> list[str]:
    """Every camera or stream name that has logged an event."""
    return sorted(str(s) for s in ctx.db.attendance.distinct("source"))

"""The figures of the dashboard's front page, read from MongoDB and Chroma in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from services.attendance.events import day_range, site_today, site_tz
from services.context import ServiceContext
from services.registry.galleries import list_galleries
from services.storage.audit import audit_trail
from services.storage.records import AuditEntry


@dataclass(frozen=True, slots=True)
class GalleryCounts:
    name: str
    model: str
    contract: str
    persons: int
    faces: int
    indexed: int  # vectors in Chroma; differs from `faces` only while writes are in flight or after a crash
    verify_threshold: float
    identify_threshold: float


@dataclass(frozen=True, slots=True)
class Overview:
    persons: int
    faces: int
    galleries: list[GalleryCounts]
    events_today: int  # today: the site's day (settings.timezone)
    unknown_today: int
    open_reviews: int
    recent: list[AuditEntry]


def overview(ctx: ServiceContext, recent: int = 15, now: datetime | None = None, tz: tzinfo | None = None) -> Overview:
    """The figures; "today" is the day `now` (default: the clock) falls on in the site's zone (or `tz`)."""
    galleries = []
    for g in list_galleries(ctx):
        faces = ctx.db.faces.count_documents({"gallery": g.name})
        persons = len(ctx.db.faces.distinct("person_id", {"gallery": g.name}))
        galleries.append(
            GalleryCounts(
                g.name,
                g.model,
                g.contract,
                persons,
                faces,
                ctx.index.count(g.collection),
                g.verify_threshold,
                g.identify_threshold,
            )
        )
    zone = site_tz(ctx, tz)
    day = site_today(ctx, now, zone)
    lo, hi = day_range(day, day, zone)
    today = {"time": {"$gte": lo, "$lt": hi}}
    return Overview(
        persons=ctx.db.persons.count_documents({}),
        faces=ctx.db.faces.count_documents({}),
        galleries=galleries,
        events_today=ctx.db.attendance.count_documents(today),
        unknown_today=ctx.db.attendance.count_documents({**today, "person_id": None, "erased": {"$ne": True}}),
        open_reviews=ctx.db.dedup_reviews.count_documents({"status": "open"}),
        recent=audit_trail(ctx, limit=recent),
    )

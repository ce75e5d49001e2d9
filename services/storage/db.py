"""MongoDB: the source of truth. Connection, collections and their indexes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError

from services.errors import StorageUnavailable

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Collections:
    persons: Collection[Doc]
    faces: Collection[Doc]
    attendance: Collection[Doc]
    galleries: Collection[Doc]
    jobs: Collection[Doc]
    audit: Collection[Doc]
    dedup_reviews: Collection[Doc]
    rejections: Collection[Doc]
    # services.storage.attendance_writes: the cooldown claims and the arrival/departure per day.
    attendance_claims: Collection[Doc]
    attendance_presence: Collection[Doc]
    cameras: Collection[Doc]  # services.attendance.cameras: each realtime camera's heartbeat and live frame


INDEXES: dict[str, list[IndexModel]] = {
    "persons": [
        # Unique when present: many persons have no external id.
        IndexModel(
            [("external_id", ASCENDING)],
            unique=True,
            name="external_id_unique",
            partialFilterExpression={"external_id": {"$type": "string"}},
        ),
        IndexModel([("display_name", ASCENDING)], name="display_name"),
    ],
    "faces": [
        IndexModel(
            [("gallery", ASCENDING), ("person_id", ASCENDING), ("image_sha256", ASCENDING)],
            unique=True,
            name="gallery_person_image_unique",
        ),
        IndexModel([("gallery", ASCENDING), ("vector_state", ASCENDING)], name="gallery_state"),
        IndexModel([("person_id", ASCENDING)], name="person"),
        # The same photo enrolled for another person (registry.enrollment.photo_owner, registry.bulk.triage).
        IndexModel([("gallery", ASCENDING), ("image_sha256", ASCENDING)], name="gallery_image"),
    ],
    "attendance": [
        IndexModel([("time", DESCENDING)], name="time"),
        IndexModel([("person_id", ASCENDING), ("source", ASCENDING), ("time", DESCENDING)], name="person_source_time"),
        IndexModel([("source", ASCENDING), ("time", DESCENDING)], name="source_time"),
    ],
    # Claims are found by `_id` ("<person>|<source>"); by person for erasure.
    "attendance_claims": [IndexModel([("person_id", ASCENDING)], name="person")],
    # Presence is upserted by `_id` ("<person>|<source>|<day>"); read by time (reports) and by person (erasure).
    "attendance_presence": [
        IndexModel([("last_seen", ASCENDING)], name="last_seen"),
        IndexModel([("person_id", ASCENDING), ("day", ASCENDING)], name="person_day"),
    ],
    "jobs": [IndexModel([("created_at", DESCENDING)], name="created"), IndexModel([("kind", ASCENDING)], name="kind")],
    "audit": [IndexModel([("time", DESCENDING)], name="time"), IndexModel([("subject", ASCENDING)], name="subject")],
    "dedup_reviews": [IndexModel([("gallery", ASCENDING), ("status", ASCENDING)], name="gallery_status")],
    "rejections": [IndexModel([("gallery", ASCENDING)], name="gallery")],
    # Dashboard sign-in failures (services.storage.signin_throttle), dropped after a day.
    "signin_failures": [
        IndexModel([("key", ASCENDING), ("time", ASCENDING)], name="key_time"),
        IndexModel([("time", ASCENDING)], name="expire", expireAfterSeconds=86_400),
    ],
}


def connect(uri: str, timeout_ms: int = 5000) -> Database[Doc]:
    """The database named in `uri` (default `facereg`), after a ping so failures surface here."""
    client: MongoClient[Doc] = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        client.close()
        raise StorageUnavailable(
            f"MongoDB at {uri} does not answer ({exc.__class__.__name__}); "
            "start the local one with `python scripts/local_services.py start` or set FACEREG_MONGO_URI"
        ) from exc
    return client.get_default_database("facereg")


def collections(db: Database[Doc]) -> Collections:
    """Each collection named as its field of `Collections`."""
    return Collections(**{f.name: db[f.name] for f in fields(Collections)})


def ensure_indexes(db: Database[Doc]) -> None:
    for name, models in INDEXES.items():
        db[name].create_indexes(models)

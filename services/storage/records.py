"""The records kept in MongoDB, as typed dataclasses with their document mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from model.types import FloatArray

VectorState = Literal["pending", "indexed", "deleting"]


def utcnow() -> datetime:
    """Now, in UTC, at millisecond precision (what BSON stores), so round trips compare equal."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """pymongo returns naive datetimes unless tz_aware; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def vector_to_bytes(vector: FloatArray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes) -> FloatArray:
    return np.frombuffer(data, dtype="<f4").copy()


@dataclass(frozen=True, slots=True)
class Consent:
    given: bool
    note: str = ""
    recorded_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    display_name: str
    external_id: str | None
    consent: Consent | None
    created_at: datetime
    updated_at: datetime
    status: Literal["active"] = "active"

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "display_name": self.display_name,
            "external_id": self.external_id,
            "consent": None
            if self.consent is None
            else {"given": self.consent.given, "note": self.consent.note, "recorded_at": self.consent.recorded_at},
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Person:
        c = doc.get("consent")
        consent = None if c is None else Consent(bool(c["given"]), c.get("note", ""), as_utc(c["recorded_at"]))
        return cls(
            id=doc["_id"],
            display_name=doc["display_name"],
            external_id=doc.get("external_id"),
            consent=consent,
            created_at=as_utc(doc["created_at"]),
            updated_at=as_utc(doc["updated_at"]),
        )


@dataclass(frozen=True, slots=True)
class Face:
    """One enrolled face. `vector` is kept in MongoDB too: Chroma is a projection rebuilt from it."""

    id: str
    person_id: str
    gallery: str
    image_sha256: str
    image_path: str
    chip_path: str
    box: list[float]
    landmarks: list[list[float]]
    detection_score: float
    quality: dict[str, float]
    contract: str
    vector: FloatArray
    vector_state: VectorState
    created_at: datetime
    updated_at: datetime
    source_name: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "person_id": self.person_id,
            "gallery": self.gallery,
            "image_sha256": self.image_sha256,
            "image_path": self.image_path,
            "chip_path": self.chip_path,
            "box": self.box,
            "landmarks": self.landmarks,
            "detection_score": self.detection_score,
            "quality": self.quality,
            "contract": self.contract,
            "vector": vector_to_bytes(self.vector),
            "vector_state": self.vector_state,
            "source_name": self.source_name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Face:
        return cls(
            id=doc["_id"],
            person_id=doc["person_id"],
            gallery=doc["gallery"],
            image_sha256=doc["image_sha256"],
            image_path=doc["image_path"],
            chip_path=doc["chip_path"],
            box=list(doc["box"]),
            landmarks=[list(p) for p in doc["landmarks"]],
            detection_score=float(doc["detection_score"]),
            quality=dict(doc["quality"]),
            contract=doc["contract"],
            vector=vector_from_bytes(doc["vector"]),
            vector_state=doc["vector_state"],
            source_name=doc.get("source_name", ""),
            created_at=as_utc(doc["created_at"]),
            updated_at=as_utc(doc["updated_at"]),
        )


@dataclass(frozen=True, slots=True)
class Gallery:
    """A named set of enrolled faces in one embedding contract, with its calibrated thresholds."""

    name: str
    contract: str
    model: str
    dim: int
    collection: str
    verify_threshold: float
    identify_threshold: float
    created_at: datetime
    updated_at: datetime
    calibration: dict[str, Any] | None = None
    reindexing_to: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.name,
            "contract": self.contract,
            "model": self.model,
            "dim": self.dim,
            "collection": self.collection,
            "verify_threshold": self.verify_threshold,
            "identify_threshold": self.identify_threshold,
            "calibration": self.calibration,
            "reindexing_to": self.reindexing_to,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Gallery:
        return cls(
            name=doc["_id"],
            contract=doc["contract"],
            model=doc["model"],
            dim=int(doc["dim"]),
            collection=doc["collection"],
            verify_threshold=float(doc["verify_threshold"]),
            identify_threshold=float(doc["identify_threshold"]),
            calibration=doc.get("calibration"),
            reindexing_to=doc.get("reindexing_to"),
            created_at=as_utc(doc["created_at"]),
            updated_at=as_utc(doc["updated_at"]),
        )

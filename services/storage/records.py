"""The records kept in MongoDB: frozen dataclasses, each written and read by one generic document mapping.

`Record.to_doc` / `Record.from_doc` map every record the same way: the `KEY` field is stored as `_id`,
datetimes as BSON dates (read back in UTC), vectors as little-endian float32 bytes, nested dataclasses as
sub-documents, everything else as it is. Reading ignores fields a record does not declare (the `erased` mark
of an anonymised attendance event, a reindex's `next_vector`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin, get_type_hints

import numpy as np
from pymongo.collection import Collection

from model.errors import (
    FaceregError,
    FaceTooSmall,
    ImageTooLarge,
    InvalidImage,
    LowQuality,
    ModelUnavailable,
    MultipleFaces,
    NoFace,
    WeightsMismatch,
)
from model.types import FloatArray
from services.errors import Conflict, ContractMismatch, DuplicatePhoto, NotFound, ServiceError, StorageUnavailable
from services.storage.db import Doc
from services.storage.input_paths import InputRefused, OutsideInputRoots

VectorState = Literal["pending", "indexed", "deleting"]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
ReviewStatus = Literal["open", "merged", "kept_separate", "face_removed"]
# The metadata of a field that is left out of the document while it is None (rather than stored as null).
OMIT_NONE: Mapping[str, bool] = {"omit_none": True}


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


def find_or_raise(collection: Collection[Doc], key: str, what: str) -> Doc:
    """The document whose `_id` is `key`; NotFound ("<what> does not exist") when there is none."""
    doc = collection.find_one({"_id": key})
    if doc is None:
        raise NotFound(f"{what} does not exist")
    return doc


def set_or_raise(collection: Collection[Doc], key: str, changes: Mapping[str, Any], what: str) -> None:
    """`$set` the `changes` on the document whose `_id` is `key` (atomically); NotFound when there is none."""
    if collection.update_one({"_id": key}, {"$set": changes}).matched_count == 0:
        raise NotFound(f"{what} does not exist")


class Record:
    """A MongoDB document as a frozen dataclass; `KEY` names the field stored as `_id` (None: the record has no
    such field, and MongoDB gives the document an ObjectId that the record does not read)."""

    __slots__ = ()
    KEY: ClassVar[str | None] = "id"

    def to_doc(self) -> Doc:
        return {"_id" if name == self.KEY else name: value for name, value in _encode_fields(self).items()}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Self:
        result: Self = _decode_fields(cls, doc if cls.KEY is None else {**doc, cls.KEY: doc["_id"]})
        return result

    @classmethod
    def get(cls, collection: Collection[Doc], key: str, what: str) -> Self:
        """The record stored under `key`; NotFound ("<what> does not exist") when there is none."""
        return cls.from_doc(find_or_raise(collection, key, what))


def _encode_fields(obj: Any) -> Doc:
    values = ((f, getattr(obj, f.name)) for f in fields(obj))
    return {f.name: _encode(v) for f, v in values if not (v is None and f.metadata.get("omit_none"))}


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return vector_to_bytes(value)
    if is_dataclass(value) and not isinstance(value, type):
        return _encode_fields(value)
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode_fields(cls: type, doc: Mapping[str, Any]) -> Any:
    """An instance of the dataclass `cls` from its document; an absent field takes its default (or None)."""
    hints = _hints(cls)
    values = {}
    for f in fields(cls):
        if f.name in doc:
            values[f.name] = _decode(hints[f.name], doc[f.name])
        elif not _has_default(f):
            values[f.name] = None if _optional(hints[f.name]) else doc[f.name]  # KeyError for a required field
    return cls(**values)


def _has_default(f: Field[Any]) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def _optional(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def _decode(hint: Any, value: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):  # `X | None`
        (inner,) = (a for a in args if a is not type(None))
        return None if value is None else _decode(inner, value)
    if hint is datetime:
        return as_utc(value)
    if origin is np.ndarray:
        return vector_from_bytes(value)
    if hint in (bool, int, float):
        return hint(value)
    if isinstance(hint, type) and is_dataclass(hint):
        return _decode_fields(hint, value)
    if origin is list:
        return [_decode(args[0], v) for v in value]
    if origin is dict:
        return dict(value)
    return value  # str, a Literal, Any


@dataclass(frozen=True, slots=True)
class Consent:
    given: bool
    note: str = ""
    recorded_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Person(Record):
    id: str
    display_name: str
    external_id: str | None
    consent: Consent | None
    created_at: datetime
    updated_at: datetime
    status: Literal["active"] = "active"


@dataclass(frozen=True, slots=True)
class Face(Record):
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


@dataclass(frozen=True, slots=True)
class Gallery(Record):
    """A named set of enrolled faces in one embedding contract, with its calibrated thresholds."""

    KEY: ClassVar[str] = "name"

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
    reindexing_to: str | None = None  # the contract a running reindex (or index rebuild) writes for
    reindexing_into: str | None = field(default=None, metadata=OMIT_NONE)  # and the collection it fills


@dataclass(frozen=True, slots=True)
class AttendanceEvent(Record):
    """A face seen by a source. An erased person's events keep no name (`person_id` None, marked `erased`)."""

    id: str
    person_id: str | None  # None: an unknown face
    display_name: str | None
    source: str
    time: datetime
    similarity: float
    snapshot_path: str | None
    # From the realtime script (services.attendance.events.Sighting); absent from older events and frame events.
    gallery: str | None = field(default=None, metadata=OMIT_NONE)
    run_id: str | None = field(default=None, metadata=OMIT_NONE)  # one run of the realtime script on one source
    track_id: int | None = field(default=None, metadata=OMIT_NONE)  # the tracker's id within the run
    first_frame: int | None = field(default=None, metadata=OMIT_NONE)  # the track's first and last frame index
    last_frame: int | None = field(default=None, metadata=OMIT_NONE)
    first_seen: datetime | None = field(default=None, metadata=OMIT_NONE)  # the track's first and last frame time
    last_seen: datetime | None = field(default=None, metadata=OMIT_NONE)
    # Unknown events only: the track's best few embeddings (biometric: dropped on erasure).
    embeddings: list[list[float]] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class Review(Record):
    """Two persons of a gallery whose faces match, queued for a human decision that is kept afterwards."""

    id: str
    gallery: str
    person_ids: list[str]
    face_ids: list[str]  # the best-matching face of each, in the order of `person_ids`
    similarity: float
    status: ReviewStatus
    created_at: datetime
    updated_at: datetime
    decided_by: str | None = field(default=None, metadata=OMIT_NONE)
    decided_at: datetime | None = field(default=None, metadata=OMIT_NONE)
    details: dict[str, Any] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class RejectionRecord(Record):
    """An image that bulk registration refused: a re-run skips it (keyed by its sha256) or refuses it again.
    `reason` is the error's message, `code` its code (model.errors); see `legacy_reason` for older documents."""

    id: str
    gallery: str
    external_id: str
    image: str
    reason: str
    code: str
    time: datetime
    path: str | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Self:
        if "code" not in doc:  # stored before rejections had codes
            code, reason = legacy_reason(doc["reason"])
            doc = {**doc, "code": code, "reason": reason}
        result: Self = super(RejectionRecord, cls).from_doc(doc)
        return result


@dataclass(frozen=True, slots=True)
class AuditEntry(Record):
    """Who did what to which record, when (the `audit` collection)."""

    KEY: ClassVar[str | None] = None

    time: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Job(Record):
    """Long work with a state, progress counts (`done` of `total`) and a small JSON result (the `jobs` collection)."""

    id: str
    kind: str
    params: dict[str, Any]
    actor: str
    state: JobState
    done: int
    total: int
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime


# The upgrade path of stored rejections: one written before error codes has no `code`, and its `reason` is
# "<error class name>: <message>". It is read as the code of the class its prefix names (the classes whose names
# such reasons carried) and the message after the prefix; this is the one place that parses such a reason.
LEGACY_REASON_CODES: Mapping[str, str] = {
    cls.__name__: cls.code
    for cls in (
        InvalidImage,
        ImageTooLarge,
        NoFace,
        FaceTooSmall,
        MultipleFaces,
        LowQuality,
        ModelUnavailable,
        WeightsMismatch,
        InputRefused,
        OutsideInputRoots,
        ServiceError,
        NotFound,
        Conflict,
        DuplicatePhoto,
        ContractMismatch,
        StorageUnavailable,
    )
}


def legacy_reason(reason: str) -> tuple[str, str]:
    """(code, message) of a reason stored as "Type: message"; an unknown type keeps the whole text, code "error"."""
    name, sep, message = reason.partition(": ")
    if sep and name in LEGACY_REASON_CODES:
        return LEGACY_REASON_CODES[name], message
    return FaceregError.code, reason

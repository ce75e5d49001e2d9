"""The task API: every task's name, queue, arguments and result, version API_VERSION (docs/tasks.md is
generated from this module by `python -m workers.docs`).

Arguments are checked at the worker boundary before any work: a message that does not fit is refused with
one `InvalidTaskMessage` (never retried) whose text names each field and its problem on one line, without
echoing large values. Strict: no coercion ("no" is not a boolean, "5" not a number, 5 not an external id),
finite numbers only, bounded strings and lists. Results are checked against their models as they leave the
worker, so what this module (and the docs) say of them stays true.

Times are ISO-8601 strings with a UTC offset ("2026-11-02T08:00:00+00:00"); a naive time is refused,
since the worker cannot know which zone the camera meant. Every string is valid UTF-8 text: a path
whose bytes are not UTF-8 travels as `path_b64` (see workers.payloads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from model.model_card import CARD_NAME, CUSTOM_PREFIX
from model.zoo import RUNTIMES, ZOO
from services.errors import ServiceError
from services.registry.enrollment import DuplicatePhotos, EnrollOptions
from services.registry.galleries import NAME, check_name
from services.registry.persons import MAX_TEXT, PersonInput
from services.storage.records import Consent
from workers.errors import InvalidTaskMessage
from workers.payloads import MAX_INLINE_BYTES, MAX_NAME_CHARS, MAX_PATH_BYTES, SOURCES, b64_length

# The message format's version: compatible changes (a new task, a new optional argument, a new result field,
# a new error code) keep it; any other change of a task's name, arguments, result or codes raises it.
API_VERSION = 1
TASK_PREFIX = "workers.tasks."  # a task's Celery name is TASK_PREFIX + its name
EMBED = "embed"  # model work: one task at a time per process (prefetch 1)
IO = "io"  # database-only work: reconcile, duplicate review scans
QUEUE_KINDS = (EMBED, IO)

MAX_B64 = b64_length(MAX_INLINE_BYTES)  # the inline image limit, in base64 characters
MAX_NOTE = 1000
MAX_ENROLL_IMAGES = 64  # one person's photos in one enroll message
MAX_PERSON_IMAGES = 1024  # one person of a bulk chunk (a folder enrolled whole: LFW's largest has 530)
MAX_BATCH = 64  # persons of a bulk chunk, images of a search batch
MAX_FRAMES = 256
MAX_DIM = 4096  # an embedding's length
MAX_KEPT = 16  # embeddings kept with an unknown sighting
MAX_TOP_K = 100
MAX_TIME = 64
SHOWN = 40  # the longest value echoed in an error
MAX_MSG = 300  # the longest message of one problem
REPORTED = 3  # problems named in one error; the rest are counted


# A zoo model, auto, or a trained one by its card (custom:<name>); zoo names need no regex escaping.
MODEL_NAME = re.compile(f"({'|'.join([*ZOO, 'auto'])}|{CUSTOM_PREFIX}{CARD_NAME.pattern})")


def _gallery_name(name: str) -> str:
    try:
        return check_name(name)
    except ServiceError as exc:
        raise ValueError(str(exc)) from None


def _model_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(
            f"unknown model; choose one of: {', '.join(ZOO)}, auto or {CUSTOM_PREFIX}<name> "
            f"(a trained model; <name> matches {CARD_NAME.pattern})"
        )
    return name


def _runtime(name: str) -> str:
    if name not in ("auto", *RUNTIMES):
        raise ValueError(f"unknown runtime; choose one of: {', '.join(RUNTIMES)} or auto")
    return name


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is blank")
    return text


def _no_nul(path: str) -> str:
    if "\0" in path:
        raise ValueError("a path cannot hold a NUL character")
    return path


def _aware_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "a time is an ISO-8601 string")
    if len(value) > MAX_TIME:
        raise PydanticCustomError("string_too_long", "a time has at most {max} characters", {"max": MAX_TIME})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("time_format", "not an ISO-8601 time like 2026-11-02T08:00:00+00:00") from None
    if when.utcoffset() is None:
        raise PydanticCustomError("time_naive", "a time needs its UTC offset, like 2026-11-02T08:00:00+00:00")
    try:
        when.astimezone(UTC)  # stored in UTC
    except OverflowError:
        raise PydanticCustomError("time_range", "a time out of range once in UTC") from None
    return when


def _text(min_length: int, max_length: int, **schema: Any) -> Any:
    return Field(min_length=min_length, max_length=max_length, json_schema_extra=schema or None)


GalleryName = Annotated[str, _text(1, 255, pattern=NAME.pattern), AfterValidator(_gallery_name)]
ModelName = Annotated[
    str,
    _text(
        1,
        255,
        anyOf=[{"enum": [*ZOO, "auto"]}, {"type": "string", "pattern": f"^{CUSTOM_PREFIX}{CARD_NAME.pattern}$"}],
        description="`custom:<name>`: a model trained with scripts/train.py, found by its card in FACEREG_MODEL_DIR",
    ),
    AfterValidator(_model_name),
]
Runtime = Annotated[str, _text(1, 255, enum=[*RUNTIMES, "auto"]), AfterValidator(_runtime)]
PathText = Annotated[str, _text(1, MAX_PATH_BYTES, description="no NUL"), AfterValidator(_no_nul)]
AwareTime = Annotated[
    datetime,
    PlainValidator(_aware_time),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": MAX_TIME, "description": "with its offset"}),
]
Text = Annotated[str, _text(1, MAX_TEXT)]
DisplayName = Annotated[str, _text(1, MAX_TEXT, description="not blank"), AfterValidator(_not_blank)]
PersonId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
JobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K, description="persons listed per face")]
Similarity = Annotated[float, Field(ge=-1.0, le=1.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
AnyGallery = Annotated[GalleryName | None, Field(description="default: the worker's FACEREG_GALLERY")]
Actor = Annotated[Text, Field(description="who asked, as the audit log names them")]
Job = Annotated[JobId | None, Field(description="the job record that follows its progress (default: the task id)")]


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class ImageMessage(Message):
    """`{"name"?, "path"}`, `{"name"?, "b64"}` or `{"name"?, "path_b64"}`: exactly one source, read by
    `workers.payloads.read` (which checks the input roots and the content)."""

    name: Annotated[str, _text(1, MAX_NAME_CHARS)] | None = None
    path: PathText | None = None
    b64: Annotated[str, _text(1, MAX_B64, description="the image's bytes in base64")] | None = None
    path_b64: Annotated[str, _text(1, b64_length(MAX_PATH_BYTES), description="a path's bytes in base64")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"an image needs exactly one of {', '.join(SOURCES)} (got {', '.join(given) or 'none'})")
        return self

    def payload(self) -> dict[str, str]:
        """The dict `workers.payloads.read` takes."""
        return self.model_dump(exclude_none=True)


class ConsentMessage(Message):
    given: bool
    note: Annotated[str, Field(max_length=MAX_NOTE)] = ""


class PersonMessage(Message):
    """A new person (`display_name`, optional `external_id` and `consent`) or an existing one (`person_id`)."""

    display_name: DisplayName | None = None
    external_id: Text | None = None
    person_id: PersonId | None = None
    consent: ConsentMessage | None = None

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.display_name is None and self.person_id is None:
            raise ValueError("a person needs a display_name (or the person_id of an existing person)")
        return self

    def to_input(self) -> PersonInput:
        consent = Consent(self.consent.given, self.consent.note) if self.consent else None
        return PersonInput(self.display_name or "", self.external_id, consent, self.person_id)


class BulkPersonMessage(PersonMessage):
    images: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_PERSON_IMAGES)]


class OptionsMessage(Message):
    multi_face: Literal["error", "largest"]
    min_quality: Fraction
    duplicate_photos: DuplicatePhotos = "warn"

    def to_options(self) -> EnrollOptions:
        return EnrollOptions(self.multi_face, self.min_quality, self.duplicate_photos)


class _Source(Message):
    # The dashboard adds both to every kind; a split CSV ignores them.
    enroll_per_person: Annotated[int, Field(ge=1, le=1000)] = 1
    max_persons: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class CsvSource(_Source):
    kind: Literal["csv"]
    root: PathText
    split_csv: PathText


class FolderSource(_Source):
    kind: Literal["folder"]
    root: PathText


class GallerySource(_Source):
    kind: Literal["gallery"]
    gallery: GalleryName


EvaluationSource = Annotated[CsvSource | FolderSource | GallerySource, Field(discriminator="kind")]


class TaskArgs(Message):
    """A task's arguments; the order of the fields is the order of its positional arguments."""

    @classmethod
    def parse(cls, task: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Self:
        names = list(cls.model_fields)
        if len(args) > len(names):
            raise InvalidTaskMessage(
                f"{task}: takes at most {len(names)} arguments ({', '.join(names)}), got {len(args)}"
            )
        given = dict(zip(names, args, strict=False))
        twice = sorted(given.keys() & kwargs.keys())
        if twice:
            raise InvalidTaskMessage(f"{task}: {twice[0]} given both by position and by name")
        try:
            return cls.model_validate({**given, **kwargs})
        except ValidationError as exc:
            raise InvalidTaskMessage(f"{task}: {describe(exc)}") from None


class EnrollArgs(TaskArgs):
    """One person and their photos, enrolled in one batch."""

    person: PersonMessage
    images: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_ENROLL_IMAGES)]
    gallery: AnyGallery = None
    options: OptionsMessage | None = None
    actor: Actor = "worker"


class BulkRegisterArgs(TaskArgs):
    """A chunk of persons, each with their photos, embedded in one batch."""

    persons: Annotated[list[BulkPersonMessage], Field(min_length=1, max_length=MAX_BATCH)]
    gallery: AnyGallery = None
    options: OptionsMessage | None = None
    actor: Actor = "worker"


class IdentifyArgs(TaskArgs):
    """Every face of a photo identified against the gallery (open set: a face may be "unknown")."""

    image: ImageMessage
    gallery: AnyGallery = None
    top_k: TopK = 5


class InspectArgs(TaskArgs):
    """A photo checked before enrollment (faces, quality, warnings); nothing is written."""

    image: ImageMessage
    gallery: AnyGallery = None
    person_id: PersonId | None = None


class VerifyArgs(TaskArgs):
    """1:1: the two photos' main faces compared at the gallery's 1:1 threshold (or the model's)."""

    image_a: ImageMessage
    image_b: ImageMessage
    gallery: AnyGallery = None


class SearchBatchArgs(TaskArgs):
    """The main face of each image searched in the gallery: its ranked persons (external id, else id)."""

    images: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_BATCH)]
    gallery: AnyGallery = None
    top_k: TopK = 5


class ProcessFramesArgs(TaskArgs):
    """A batch of frames from one camera; recognised faces are logged as attendance events, with the
    cooldown (one event per person and source within it)."""

    frames: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_FRAMES)]
    source: DisplayName
    gallery: AnyGallery = None
    times: (
        Annotated[list[AwareTime], Field(max_length=MAX_FRAMES, description="one per frame (default: now)")] | None
    ) = None
    top_k: TopK = 3

    @model_validator(mode="after")
    def _a_time_per_frame(self) -> Self:
        if self.times is not None and len(self.times) != len(self.frames):
            raise ValueError(f"times: {len(self.times)} given for {len(self.frames)} frames (one per frame)")
        return self


class RecogniseChipsArgs(TaskArgs):
    """Aligned face chips from a camera (ArcFace template, the gallery model's input size, PNG or JPEG),
    embedded in one batch and searched: the realtime script's faces. Nothing is written."""

    chips: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_BATCH)]
    gallery: AnyGallery = None
    top_k: TopK = 3


Embedding = Annotated[list[Annotated[float, Field(ge=-1.0, le=1.0)]], Field(min_length=1, max_length=MAX_DIM)]


class SightingMessage(Message):
    """A face track whose identity the realtime script decided (person_id null: an unknown visitor)."""

    key: Annotated[str, _text(1, MAX_TEXT, description="unique per track: a repeat logs nothing more")]
    person_id: PersonId | None
    display_name: Text | None = None
    source: DisplayName
    gallery: GalleryName
    time: AwareTime
    similarity: Similarity
    run_id: Annotated[str, _text(1, 64)]
    track_id: Annotated[int, Field(ge=0)]
    first_frame: Annotated[int, Field(ge=0)]
    last_frame: Annotated[int, Field(ge=0)]
    first_seen: AwareTime
    last_seen: AwareTime
    snapshot: ImageMessage | None = None
    embeddings: Annotated[list[Embedding], Field(max_length=MAX_KEPT)] | None = Field(
        default=None, description="an unknown visitor's best embeddings"
    )


class LogSightingsArgs(TaskArgs):
    """Decided tracks logged as attendance: one event per person and camera within the cooldown (atomic
    across scripts and workers), each unknown track one event; arrival and departure kept per day."""

    sightings: Annotated[list[SightingMessage], Field(min_length=1, max_length=MAX_BATCH)]
    cooldown_s: Annotated[float, Field(ge=0.0, le=7 * 24 * 3600.0)] | None = Field(
        default=None, description="default: the worker's FACEREG_ATTENDANCE_COOLDOWN_S"
    )


class GalleryEvaluationArgs(TaskArgs):
    """A Top-K evaluation from a split CSV (the `evaluate` task with a csv source); its job record tells."""

    root: PathText
    split_csv: PathText
    gallery: GalleryName
    job_id: Job = None


class EvaluateArgs(TaskArgs):
    """A Top-K evaluation from a split CSV, a folder of <person>/<images> or a gallery holdout; its job
    record (the job id, default the task id) tells its progress."""

    source: EvaluationSource
    gallery: GalleryName
    job_id: Job = None


class GalleryArgs(TaskArgs):
    """A gallery's name (image_duplicates, reconcile)."""

    gallery: GalleryName


class ReindexArgs(TaskArgs):
    """Every face of a gallery re-embedded with another model, then switched to at once."""

    gallery: GalleryName
    model: ModelName
    runtime: Runtime = "auto"


class DedupScanArgs(TaskArgs):
    """Pairs of persons who may be one (faces matching above the threshold, default the gallery's 1:N one),
    queued for review."""

    gallery: GalleryName
    threshold: Similarity | None = None


class Result(BaseModel):
    """A task's result (or a part of one) as the worker returns it."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemError(Result):
    """One item of a task that could not be done while the task went on without it."""

    code: str = Field(description="the error's code (see Error codes)")
    message: str = Field(description="what went wrong, for people")


class EnrolledImage(Result):
    name: str
    status: Literal["enrolled", "already_enrolled", "rejected"]
    reason: str = Field(description="why it was not enrolled now, for people; empty when enrolled")
    code: str | None = Field(description="a rejection's error code (see Error codes); null unless rejected")
    face_id: str | None
    quality: dict[str, float] | None = Field(description="detection, size_px, sharpness, yaw_deg, roll_deg, score")
    warnings: list[str]


class EnrollResult(Result):
    person_id: str | None = Field(description="null: no photo could be stored, so the person was not created")
    display_name: str
    gallery: str
    person_created: bool
    enrolled: int
    already_enrolled: int
    rejected: int
    images: list[EnrolledImage] = Field(description="one per image, in the order sent")


class Match(Result):
    person_id: str
    display_name: str
    similarity: float


class IdentifiedFace(Result):
    box: list[float] = Field(description="x1, y1, x2, y2 in pixels")
    quality: float
    identity: str = Field(description='the display name, or "unknown" under the threshold')
    person_id: str | None
    similarity: float = Field(description="of the best match (0 when the gallery is empty)")
    threshold: float
    matches: list[Match] = Field(description="the Top-K persons, best first")


class IdentifyResult(Result):
    image: str
    faces: list[IdentifiedFace]


class InspectedFace(Result):
    box: list[float]
    quality: dict[str, float]


class InspectResult(Result):
    image: str
    faces: list[InspectedFace]
    primary: int | None = Field(description="the index of the face an enrollment would use")
    warnings: list[str]
    error: ItemError | None = Field(description="the photo cannot be read")


class VerifyResult(Result):
    similarity: float
    is_same: bool
    threshold: float
    model: str
    contract: str
    quality: list[float] = Field(description="of the two faces")


class RankedProbe(Result):
    name: str
    error: ItemError | None = Field(description="the image could not be searched")
    ranked: list[tuple[str, float]] = Field(description="[external id (else person id), similarity], best first")


class FrameFace(IdentifiedFace):
    event_id: str | None = Field(description="the attendance event logged; null: unknown, or within the cooldown")


class FrameResult(Result):
    index: int
    faces: list[FrameFace]
    error: ItemError | None = Field(description="the frame could not be read; no face is not an error")


class ChipResult(Result):
    matches: list[Match] = Field(description="the Top-K persons, best first")
    threshold: float = Field(description="the gallery's 1:N threshold")
    vector: list[float] = Field(description="the chip's embedding")


class LoggedSighting(Result):
    key: str
    status: Literal["logged", "cooldown"] = Field(description="cooldown: the person was logged at this camera lately")
    event_id: str | None = Field(description="the event (a repeat of a logged key names the same one)")


class EnrollmentCounts(Result):
    persons: int
    enrolled: int
    already_enrolled: int
    rejected: int


class ProbeFailure(Result):
    probe: str
    expected: str
    predicted: str | None
    similarity: float | None


class MateScores(Result):
    genuine: list[float] = Field(description="per probe, its own identity's similarity (-1: not in its Top-K)")
    impostor: list[float] = Field(description="per probe, the best other identity's similarity")


class EvaluationReport(Result):
    gallery: str
    contract: str
    top1: float
    top3: float
    top5: float
    n_probes: int
    n_identities: int
    enrollment: EnrollmentCounts
    n_failed: int
    identify_threshold: float
    open_set_rank1: float = Field(description="probes whose Top-1 is their own person at or above the threshold")
    failures: list[ProbeFailure] = Field(description="probes whose Top-1 is wrong (at most 200)")
    scores: MateScores
    examples: dict[str, str] = Field(description="identity -> one of its enroll images")
    n_unknown: int | None = Field(None, description="probes of people outside the gallery (when there are)")
    open_set_fpir: float | None = Field(None, description="the share of them accepted as someone")
    job_id: str


class DuplicateGroup(Result):
    keys: list[str] = Field(description="face ids")
    best: str = Field(description="the highest-quality member")
    min_similarity: float
    max_hash_distance: int


class ImageDuplicatesResult(Result):
    gallery: str
    groups: list[DuplicateGroup]


class ReindexResult(Result):
    gallery: str
    contract: str = Field(description="the contract the gallery is now on")
    reindexed: int
    from_: str | None = Field(None, alias="from", description="the contract before (when a reindex ran)")
    note: str | None = Field(None, description="why nothing was done")


class ReconcileResult(Result):
    gallery: str
    faces: int
    vectors_before: int
    orphan_vectors_deleted: int
    pending_projected: int
    missing_vectors_restored: int
    deletions_finished: int
    vectors_after: int
    templates_repaired: int = Field(description="person templates rewritten to match the face records")
    repaired: int


class DedupScanResult(Result):
    gallery: str
    new_candidates: int = Field(description="pairs newly queued for review")


@dataclass(frozen=True)
class TaskSpec:
    """One task of the API: its arguments' model (whose docstring tells what it does) and its result's type."""

    name: str
    args: type[TaskArgs]
    result: Any  # a Result model, or a list of one
    queue: str = EMBED

    @property
    def celery_name(self) -> str:
        return TASK_PREFIX + self.name

    @cached_property
    def results(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.result)

    def dump_result(self, value: object) -> Any:
        """`value` checked against the result type, as JSON-ready data (keys the task left out stay out)."""
        adapter = self.results
        return adapter.dump_python(adapter.validate_python(value), mode="json", by_alias=True, exclude_unset=True)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("enroll", EnrollArgs, EnrollResult),
        TaskSpec("bulk_register", BulkRegisterArgs, list[EnrollResult]),
        TaskSpec("identify", IdentifyArgs, IdentifyResult),
        TaskSpec("inspect", InspectArgs, InspectResult),
        TaskSpec("verify", VerifyArgs, VerifyResult),
        TaskSpec("search_batch", SearchBatchArgs, list[RankedProbe]),
        TaskSpec("process_frames", ProcessFramesArgs, list[FrameResult]),
        TaskSpec("recognise_chips", RecogniseChipsArgs, list[ChipResult]),
        TaskSpec("log_sightings", LogSightingsArgs, list[LoggedSighting], IO),
        TaskSpec("gallery_evaluation", GalleryEvaluationArgs, EvaluationReport),
        TaskSpec("evaluate", EvaluateArgs, EvaluationReport),
        TaskSpec("image_duplicates", GalleryArgs, ImageDuplicatesResult),
        TaskSpec("reindex", ReindexArgs, ReindexResult),
        TaskSpec("reconcile", GalleryArgs, ReconcileResult, IO),
        TaskSpec("dedup_scan", DedupScanArgs, DedupScanResult, IO),
    )
}


def spec_of(task: str) -> TaskSpec:
    """The task named `task` (short name), or InvalidTaskMessage."""
    try:
        return TASKS[task]
    except KeyError:
        raise InvalidTaskMessage(f"{task}: no such task (tasks: {', '.join(TASKS)})") from None


def describe(exc: ValidationError) -> str:
    """Each problem as `field: what is wrong (got <short value>)`, on one line."""
    errors = exc.errors(include_url=False)
    problems = [_problem(e) for e in errors[:REPORTED]]
    more = len(errors) - len(problems)
    return "; ".join(problems) + (f"; and {more} more problem(s)" if more else "")


def _problem(error: Any) -> str:
    where = _where(error["loc"])
    if error["type"] == "missing":
        return f"{where}: missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: not expected"
    msg = "Input should be an object" if error["type"] == "model_type" else str(error["msg"])
    msg = " ".join(msg.removeprefix("Value error, ").split())
    msg = msg if len(msg) <= MAX_MSG else msg[:MAX_MSG] + "..."
    got = error.get("input")
    if not isinstance(got, dict):  # a whole object's problem is told by its message
        msg += f" (got {_shown(got)})"
    return f"{where}: {msg}" if where else msg


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{_shown_key(part)}" if out else _shown_key(part)
    return out


def _shown_key(key: str) -> str:
    return key if len(key) <= SHOWN else f"{key[:SHOWN]}..."


def _shown(value: object) -> str:
    """A value short enough to echo, else its type and size."""
    if isinstance(value, str):
        return repr(value) if len(value) <= SHOWN else f"a string of {len(value)} characters"
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= SHOWN else f"a number of {len(text)} digits"
    if isinstance(value, list | tuple | dict):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__

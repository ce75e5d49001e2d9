"""The schema of every task's arguments, checked at the worker boundary before any work.

A message that does not fit is refused with one `InvalidTaskMessage` (never retried) whose text names
each field and its problem on one line, without echoing large values. Strict: no coercion ("no" is not
a boolean, "5" not a number, 5 not an external id), finite numbers only, bounded strings and lists.

Times are ISO-8601 strings with a UTC offset ("2026-11-02T08:00:00+00:00"); a naive time is refused,
since the worker cannot know which zone the camera meant. Every string is valid UTF-8 text: a path
whose bytes are not UTF-8 travels as `path_b64` (see workers.payloads).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from model.errors import FaceregError
from model.zoo import RUNTIMES, ZOO
from services.errors import ServiceError
from services.registry.enrollment import DuplicatePhotos, EnrollOptions
from services.registry.galleries import check_name
from services.registry.persons import PersonInput
from services.storage.records import Consent
from workers.payloads import MAX_INLINE_BYTES, MAX_NAME_CHARS, MAX_PATH_BYTES, SOURCES, b64_length

MAX_B64 = b64_length(MAX_INLINE_BYTES)  # the inline image limit, in base64 characters
MAX_TEXT = 200  # display names, external ids, sources, actors
MAX_NOTE = 1000
MAX_ENROLL_IMAGES = 64  # one person's photos in one enroll message
MAX_PERSON_IMAGES = 1024  # one person of a bulk chunk (a folder enrolled whole: LFW's largest has 530)
MAX_BATCH = 64  # persons of a bulk chunk, images of a search batch
MAX_FRAMES = 256
MAX_TOP_K = 100
MAX_TIME = 64
SHOWN = 40  # the longest value echoed in an error
MAX_MSG = 300  # the longest message of one problem
REPORTED = 3  # problems named in one error; the rest are counted


class InvalidTaskMessage(FaceregError):
    """A task message whose arguments do not fit the task's schema; retrying cannot help."""


def _gallery_name(name: str) -> str:
    try:
        return check_name(name)
    except ServiceError as exc:
        raise ValueError(str(exc)) from None


def _model_name(name: str) -> str:
    if name != "auto" and name not in ZOO:
        raise ValueError(f"unknown model; choose one of: {', '.join(ZOO)} or auto")
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


def _text(min_length: int, max_length: int) -> Any:
    return Field(min_length=min_length, max_length=max_length)


GalleryName = Annotated[str, _text(1, 255), AfterValidator(_gallery_name)]
ModelName = Annotated[str, _text(1, 255), AfterValidator(_model_name)]
Runtime = Annotated[str, _text(1, 255), AfterValidator(_runtime)]
PathText = Annotated[str, _text(1, MAX_PATH_BYTES), AfterValidator(_no_nul)]
AwareTime = Annotated[datetime, PlainValidator(_aware_time)]
Text = Annotated[str, _text(1, MAX_TEXT)]
DisplayName = Annotated[str, _text(1, MAX_TEXT), AfterValidator(_not_blank)]
PersonId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
JobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K)]
Similarity = Annotated[float, Field(ge=-1.0, le=1.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class ImageMessage(Message):
    """`{"name"?, "path"}`, `{"name"?, "b64"}` or `{"name"?, "path_b64"}`: exactly one source, read by
    `workers.payloads.read` (which checks the input roots and the content)."""

    name: Annotated[str, _text(1, MAX_NAME_CHARS)] | None = None
    path: PathText | None = None
    b64: Annotated[str, _text(1, MAX_B64)] | None = None
    path_b64: Annotated[str, _text(1, b64_length(MAX_PATH_BYTES))] | None = None

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
    person: PersonMessage
    images: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_ENROLL_IMAGES)]
    gallery: GalleryName | None = None
    options: OptionsMessage | None = None
    actor: Text = "worker"


class BulkRegisterArgs(TaskArgs):
    persons: Annotated[list[BulkPersonMessage], Field(min_length=1, max_length=MAX_BATCH)]
    gallery: GalleryName | None = None
    options: OptionsMessage | None = None
    actor: Text = "worker"


class IdentifyArgs(TaskArgs):
    image: ImageMessage
    gallery: GalleryName | None = None
    top_k: TopK = 5


class InspectArgs(TaskArgs):
    image: ImageMessage
    gallery: GalleryName | None = None
    person_id: PersonId | None = None


class VerifyArgs(TaskArgs):
    image_a: ImageMessage
    image_b: ImageMessage
    gallery: GalleryName | None = None


class SearchBatchArgs(TaskArgs):
    images: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_BATCH)]
    gallery: GalleryName | None = None
    top_k: TopK = 5


class ProcessFramesArgs(TaskArgs):
    frames: Annotated[list[ImageMessage], Field(min_length=1, max_length=MAX_FRAMES)]
    source: DisplayName
    gallery: GalleryName | None = None
    times: Annotated[list[AwareTime], Field(max_length=MAX_FRAMES)] | None = None
    top_k: TopK = 3

    @model_validator(mode="after")
    def _a_time_per_frame(self) -> Self:
        if self.times is not None and len(self.times) != len(self.frames):
            raise ValueError(f"times: {len(self.times)} given for {len(self.frames)} frames (one per frame)")
        return self


class GalleryEvaluationArgs(TaskArgs):
    root: PathText
    split_csv: PathText
    gallery: GalleryName
    job_id: JobId | None = None


class EvaluateArgs(TaskArgs):
    source: EvaluationSource
    gallery: GalleryName
    job_id: JobId | None = None


class GalleryArgs(TaskArgs):
    """image_duplicates, reconcile."""

    gallery: GalleryName


class ReindexArgs(TaskArgs):
    gallery: GalleryName
    model: ModelName
    runtime: Runtime = "auto"


class DedupScanArgs(TaskArgs):
    gallery: GalleryName
    threshold: Similarity | None = None


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


A = TypeVar("A", bound=TaskArgs)
R = TypeVar("R")
TASK_SCHEMAS: dict[str, type[TaskArgs]] = {}  # task name -> its schema, filled by `validated`


def validated(schema: type[A]) -> Callable[[Callable[[Any, A], R]], Callable[..., R]]:
    """A task body `fn(self, args: schema)` as a Celery task function `(self, *args, **kwargs)`: the
    message is checked against `schema` first (missing, extra and mistyped arguments alike). Celery
    checks no arity of its own on a `*args` function, so every bad message gets the same typed error."""

    def wrap(fn: Callable[[Any, A], R]) -> Callable[..., R]:
        TASK_SCHEMAS[fn.__name__] = schema

        @functools.wraps(fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        def run(self: Any, *args: Any, **kwargs: Any) -> R:
            return fn(self, schema.parse(fn.__name__, args, kwargs))

        return run

    return wrap

"""Errors crossing the task queue: a stable code plus a message, mapped back to the typed exception.

A task that fails raises `TaskError(code, message)` whatever went wrong, so Celery stores every failure alike
(`exc_type` "TaskError", `exc_message` [code, message]) and a client without facereg's code reads the two
from the exception's args. The codes are the typed errors' `code` attributes (model.errors, services.errors,
...); `error_class` turns a code back into its class.
"""

from __future__ import annotations

from kombu.exceptions import OperationalError
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
from model.evaluation.metrics import MetricError
from model.evaluation.protocols import DatasetError
from services.errors import (
    Conflict,
    ContractMismatch,
    DuplicatePhoto,
    NotFound,
    ServiceError,
    SourceUnavailable,
    StorageUnavailable,
)
from services.search.verification import InvalidThreshold
from services.storage.input_paths import InputRefused, OutsideInputRoots

# Redis (the broker and result backend) went away around the task: resubmitting is safe.
BROKER_DOWN = (RedisConnectionError, RedisTimeoutError, OperationalError, ConnectionError, TimeoutError)


class InvalidTaskMessage(FaceregError):
    """A task message whose arguments do not fit the task's schema (or names no task); retrying cannot help."""

    code = "invalid_task_message"


class QueueUnavailable(ServiceError):
    """The broker (Redis) cannot be reached, or went away while the task ran: resubmit once it is back."""

    code = "broker_unavailable"


class InternalError(FaceregError):
    """An unexpected error (a bug); the worker's log holds its traceback."""

    code = "internal_error"


class TaskError(Exception):
    """A failed task as it crosses the queue: args are (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


# Every error a task can end with, most general last within each family (the public list of codes).
ERRORS: tuple[type[FaceregError], ...] = (
    InvalidTaskMessage,
    InvalidImage,
    ImageTooLarge,
    InputRefused,
    OutsideInputRoots,
    NoFace,
    FaceTooSmall,
    MultipleFaces,
    LowQuality,
    NotFound,
    Conflict,
    DuplicatePhoto,
    ContractMismatch,
    InvalidThreshold,
    DatasetError,
    MetricError,
    ServiceError,
    ModelUnavailable,
    WeightsMismatch,
    StorageUnavailable,
    SourceUnavailable,
    QueueUnavailable,
    InternalError,
)
BY_CODE: dict[str, type[FaceregError]] = {cls.code: cls for cls in ERRORS}


def error_of(exc: BaseException) -> tuple[str, str]:
    """(code, message) of an exception: a typed error's own code, an outage's code, else an internal error."""
    if isinstance(exc, TaskError):
        return exc.code, exc.message
    if isinstance(exc, FaceregError):
        return exc.code, str(exc)
    if isinstance(exc, ConnectionFailure):
        return StorageUnavailable.code, f"MongoDB cannot be reached: {exc}"
    if isinstance(exc, BROKER_DOWN):
        return QueueUnavailable.code, f"the task queue went away: {type(exc).__name__}: {exc}"
    return InternalError.code, f"{type(exc).__name__}: {exc}"


def error_class(code: str) -> type[FaceregError]:
    """The typed error of a code (FaceregError for a code this version does not know)."""
    return BY_CODE.get(code, FaceregError)

"""Typed errors of the face pipeline. Every message says what went wrong and what to do.

Each class has a stable `code`: the name an error has when it crosses the task queue (workers.messages),
part of the public task API (docs/tasks.md). A subclass without a code of its own reports its parent's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class FaceregError(Exception):
    """Base class of every error facereg raises on purpose."""

    code: ClassVar[str] = "error"


class InvalidImage(FaceregError):
    """The input is not a decodable image (empty, truncated, unknown format)."""

    code = "invalid_image"


class ImageTooLarge(InvalidImage):
    """The input exceeds the byte or pixel limits (decompression bombs included)."""

    code = "image_too_large"


class NoFace(FaceregError):
    """No face was found in the image."""

    code = "no_face"


class FaceTooSmall(NoFace):
    """Faces were found, but all of them are under the minimum face size."""

    code = "face_too_small"


class MultipleFaces(FaceregError):
    """The image holds several faces where exactly one was required."""

    code = "multiple_faces"


class LowQuality(FaceregError):
    """The face is below the quality gate (blur, pose, size or detection score)."""

    code = "low_quality"


class ModelUnavailable(FaceregError):
    """A model or its weights cannot be found or loaded."""

    code = "model_unavailable"


class WeightsMismatch(ModelUnavailable):
    """A weights file does not match its architecture or its recorded sha256."""

    code = "weights_mismatch"


class TrainingError(FaceregError):
    """Training cannot start or go on as asked: unusable data, an incompatible checkpoint, a bad setting."""

    code = "training_error"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One item's error inside a result that goes on without it (a rejected photo, a probe that could not be
    searched): its error class's stable `code` and the message people read."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def error_info(exc: FaceregError) -> ErrorInfo:
    """The code and message of a typed error, as every per-item error of a result reports it."""
    return ErrorInfo(exc.code, str(exc))

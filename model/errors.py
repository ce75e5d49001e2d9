"""Typed errors of the face pipeline. Every message says what went wrong and what to do."""

from __future__ import annotations


class FaceregError(Exception):
    """Base class of every error facereg raises on purpose."""


class InvalidImage(FaceregError):
    """The input is not a decodable image (empty, truncated, unknown format)."""


class ImageTooLarge(InvalidImage):
    """The input exceeds the byte or pixel limits (decompression bombs included)."""


class NoFace(FaceregError):
    """No face was found in the image."""


class FaceTooSmall(NoFace):
    """Faces were found, but all of them are under the minimum face size."""


class MultipleFaces(FaceregError):
    """The image holds several faces where exactly one was required."""


class LowQuality(FaceregError):
    """The face is below the quality gate (blur, pose, size or detection score)."""


class ModelUnavailable(FaceregError):
    """A model or its weights cannot be found or loaded."""


class WeightsMismatch(ModelUnavailable):
    """A weights file does not match its architecture or its recorded sha256."""

"""Images in task messages: a stored path, or base64 bytes under a size limit. Never pickled.

A message is JSON (Celery), kept in Redis and MongoDB, so every string in it is valid UTF-8: `name` is
printable text, and a path whose bytes are not UTF-8 travels as `path_b64` (its bytes in base64).
A path is read only under the allowed input roots (FACEREG_INPUT_ROOTS), see services.storage.input_paths."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

from model.errors import ImageTooLarge, InvalidImage
from services.config import get_settings
from services.storage.input_paths import printable, read_input

MAX_INLINE_BYTES = 8 * 1024 * 1024
MAX_NAME_CHARS = 255
MAX_PATH_BYTES = 4096  # PATH_MAX
SOURCES = ("b64", "path", "path_b64")


class ImagePayload(TypedDict, total=False):
    name: str
    path: str
    path_b64: str
    b64: str


def b64_length(n_bytes: int) -> int:
    """The length of the base64 text of `n_bytes` bytes."""
    return 4 * -(-n_bytes // 3)


def label(name: object) -> str:
    """A payload's name as UTF-8-safe text of at most MAX_NAME_CHARS characters."""
    text = printable(name) if isinstance(name, str | bytes | Path) else str(name)
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 1] + "…"


def from_path(path: str | bytes | os.PathLike[str], name: str | None = None) -> ImagePayload:
    p = Path(os.fsdecode(path))
    real = str(p.resolve())
    named = label(name if name is not None else p.name)
    if real == printable(real):  # plain UTF-8: readable as it is
        return {"name": named, "path": real}
    return {"name": named, "path_b64": base64.b64encode(os.fsencode(real)).decode("ascii")}


def from_bytes(data: bytes, name: str) -> ImagePayload:
    if len(data) > MAX_INLINE_BYTES:
        raise ImageTooLarge(
            f"{label(name)}: {len(data)} bytes is over the {MAX_INLINE_BYTES} bytes allowed inline; pass a stored path"
        )
    return {"name": label(name), "b64": base64.b64encode(data).decode("ascii")}


def read(
    payload: ImagePayload | dict[str, Any], roots: Sequence[Path] | None = None, max_bytes: int | None = None
) -> tuple[str, bytes]:
    """(name, bytes) of a payload; a refused path, a missing file or bad base64 is a typed error for that image.

    `roots` and `max_bytes` default to the settings (FACEREG_INPUT_ROOTS, FACEREG_MAX_IMAGE_BYTES)."""
    if not isinstance(payload, dict):
        raise InvalidImage(f"an image is an object with one of {', '.join(SOURCES)}, not {type(payload).__name__}")
    fields: dict[str, Any] = dict(payload)
    name = label(fields.get("name", "image"))
    given = [k for k in SOURCES if k in fields]
    if len(given) != 1:
        raise InvalidImage(f"{name}: an image has exactly one of {', '.join(SOURCES)} (got {len(given)})")
    if roots is None or max_bytes is None:
        settings = get_settings()
        roots = settings.allowed_input_roots if roots is None else roots
        max_bytes = settings.max_image_bytes if max_bytes is None else max_bytes
    if given[0] == "b64":
        return name, _inline(fields["b64"], name, min(max_bytes, MAX_INLINE_BYTES))
    return name, read_input(_path(given[0], fields[given[0]], name), roots, max_bytes)


def _inline(text: object, name: str, limit: int) -> bytes:
    """Base64 decoded only once its length shows the image is within `limit` bytes."""
    if not isinstance(text, str):
        raise InvalidImage(f"{name}: the inline image is not base64 text")
    if len(text) > b64_length(limit):
        raise ImageTooLarge(f"{name}: the inline image is over the {limit} bytes allowed inline; pass a stored path")
    data = _b64decode(text, f"{name}: the inline image is not valid base64")
    if len(data) > limit:  # unreachable for valid base64 of this length, kept as the invariant
        raise ImageTooLarge(f"{name}: {len(data)} bytes is over the {limit} bytes allowed inline")
    return data


def _path(key: str, value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidImage(f"{name}: {key} is not a non-empty text")
    if len(value) > b64_length(MAX_PATH_BYTES):
        raise InvalidImage(f"{name}: {key} is longer than a path can be")
    if key == "path":
        return value
    return os.fsdecode(_b64decode(value, f"{name}: path_b64 is not valid base64"))


def _b64decode(text: str, error: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(error) from None

"""Images in task messages: a stored path, or base64 bytes under a size limit. Never pickled."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, TypedDict

from model.errors import ImageTooLarge, InvalidImage

MAX_INLINE_BYTES = 8 * 1024 * 1024


class ImagePayload(TypedDict, total=False):
    name: str
    path: str
    b64: str


def from_path(path: str | Path, name: str | None = None) -> ImagePayload:
    p = Path(path)
    return {"name": name or p.name, "path": str(p.resolve())}


def from_bytes(data: bytes, name: str) -> ImagePayload:
    if len(data) > MAX_INLINE_BYTES:
        raise ImageTooLarge(
            f"{name}: {len(data)} bytes is over the {MAX_INLINE_BYTES} bytes allowed inline; pass a stored path"
        )
    return {"name": name, "b64": base64.b64encode(data).decode("ascii")}


def read(payload: ImagePayload | dict[str, Any]) -> tuple[str, bytes]:
    """(name, bytes) of a payload; a missing file or bad base64 is an InvalidImage for that image only."""
    name = str(payload.get("name", "image"))
    if "b64" in payload:
        try:
            return name, base64.b64decode(payload["b64"], validate=True)
        except ValueError as exc:
            raise InvalidImage(f"{name}: the inline image is not valid base64") from exc
    path = Path(str(payload.get("path", "")))
    if not path.is_file():
        raise InvalidImage(f"{name}: no such file {path}")
    return name, path.read_bytes()

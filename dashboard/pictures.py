"""Pictures for the pages: uploaded photos with their faces boxed and labelled, stored face chips."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from model.errors import InvalidImage
from model.image_io import decode_image, read_image_bytes
from services.config import get_settings

GREEN = (46, 160, 67)
RED = (218, 54, 51)
AMBER = (210, 153, 34)
THUMB = 160


def open_image(data: bytes | Path | str) -> Image.Image | None:
    """The image as the workers decode it, or None when it cannot be decoded or breaks the limits.

    Upright per its EXIF and reduced to the working size (at most 4 MP): the face boxes the workers
    store are in these pixels, and the page costs no more memory than a worker for any upload.
    """
    limits = get_settings().image_limits
    try:
        raw = data if isinstance(data, bytes) else read_image_bytes(data, limits)
        return Image.fromarray(decode_image(raw, limits))
    except (InvalidImage, OSError):
        return None


def boxed(
    data: bytes | Path | str,
    boxes: Sequence[Sequence[float]],
    labels: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
) -> Image.Image | None:
    """The photo with each face boxed and labelled (boxes in `open_image`'s pixels, as the workers give them)."""
    img = open_image(data)
    if img is None:
        return None
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 250))
    font = ImageFont.load_default(size=max(12, round(max(img.size) / 30)))
    for box, label, colour in zip(boxes, labels, colours, strict=True):
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        if label:
            left, top, right, bottom = draw.textbbox((x0, y0), label, font=font)
            lift = bottom - top + 2 * width
            y = y0 - lift if y0 - lift >= 0 else y1
            draw.rectangle((x0, y, x0 + right - left + 2 * width, y + lift), fill=colour)
            draw.text((x0 + width, y + width - (top - y0)), label, fill=(255, 255, 255), font=font)
    return img


def data_uri(path: str | Path | None, size: int = 64) -> str | None:
    """A small JPEG of a stored image as a data: URI, for image columns of tables."""
    img = thumbnail(path, size)
    if img is None:
        return None
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail(path: str | Path | None, size: int = THUMB) -> Image.Image | None:
    """A stored image scaled to fit `size`, or None when the file is gone."""
    if not path or not Path(path).is_file():
        return None
    img = open_image(Path(path))
    if img is None:
        return None
    img.thumbnail((size, size))
    return img

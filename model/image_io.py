"""Decode untrusted image bytes into an RGB uint8 array, or refuse them with a typed error."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from model.errors import ImageTooLarge, InvalidImage
from model.types import ImageArray

# A truncated file must fail loudly, never decode into half a grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits applied before and during decoding."""

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    min_side: int = 16


def read_image_bytes(path: str | Path, limits: ImageLimits = ImageLimits()) -> bytes:
    """Read a file, refusing missing paths and files over the byte limit before reading them."""
    p = Path(path)
    if not p.is_file():
        raise InvalidImage(f"{p}: no such file")
    size = p.stat().st_size
    if size > limits.max_bytes:
        raise ImageTooLarge(f"{p}: {size} bytes is over the limit of {limits.max_bytes} bytes")
    return p.read_bytes()


def load_image(path: str | Path, limits: ImageLimits = ImageLimits()) -> ImageArray:
    """Read and decode an image file."""
    try:
        return decode_image(read_image_bytes(path, limits), limits)
    except InvalidImage as exc:
        if str(path) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from exc


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> ImageArray:
    """Bytes -> HxWx3 RGB uint8, with EXIF orientation applied and every mode converted."""
    if not data:
        raise InvalidImage("the file is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes")
    img = _open_checked(data, limits)
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image is truncated or corrupt ({exc})") from exc
    if min(img.size) < limits.min_side:
        raise InvalidImage(f"the image is {img.width}x{img.height}; at least {limits.min_side} px per side is needed")
    return np.ascontiguousarray(np.asarray(_to_rgb(img), dtype=np.uint8))


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open lazily and check the declared size before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image declares too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not an image in a known format (JPEG, PNG, WebP, BMP, TIFF, GIF)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image header is corrupt ({exc})") from exc
    pixels = img.width * img.height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"the image is {img.width}x{img.height} ({pixels} pixels); the limit is {limits.max_pixels} pixels"
        )
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. Transparent pixels become white, 16-bit greys keep their brightness."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit greys map 65535 to 255; 32-bit integer images have no fixed range, so use theirs.
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() <= 65535 else float(arr.max())
        return Image.fromarray((arr * (255.0 / top)).round().clip(0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")

"""Decode untrusted image bytes into an RGB uint8 array, or refuse them with a typed error.

Memory is bounded before any pixel is decoded: the declared size is checked against the pixel limit,
the aspect ratio limit and an estimate of what the format's decoder will allocate for it. JPEGs are
decoded reduced (libjpeg scales by 1/2, 1/4 or 1/8 while decoding); every colour conversion and resize
after decoding runs on the reduced image or on strips of about a megapixel. The array handed back never
holds more than `work_pixels`: larger images are reduced to it, keeping their aspect ratio.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageFile, JpegImagePlugin, UnidentifiedImageError

from model.errors import ImageTooLarge, InvalidImage
from model.types import ImageArray

# A truncated file must fail loudly, never decode into half a grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Colour conversion and reduction run on horizontal strips of about this many pixels, so no full-size
# converted copy (RGBA composited on white, 16-bit greys as float64) ever exists.
STRIP_PIXELS = 1 << 20

# Bytes per pixel of Pillow's image in each mode (4 for the rest).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}

# Only decoders whose memory use was measured (scripts/bench_decode.py) are used. JPEG includes MPO.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")

# The file names taken for images: in uploads, the formats a browser can also show; in folders, TIFF too.
UPLOAD_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
IMAGE_SUFFIXES = UPLOAD_SUFFIXES | {".tif", ".tiff"}

# EXIF Orientation -> the transposition that shows the image upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits applied before and during decoding.

    `max_pixels` bounds the declared size (what a decoder may have to allocate); `max_aspect` refuses
    slivers (16x187,500 is a 3 MP "image" no detector can use, and every later enlargement of its short
    side multiplies its area); `work_pixels` is the size decoded images are reduced to: 4 MP (2309x1732
    for a 4:3 photo) costs 12 MB as an array, and faces are aligned from it at up to 1.4 times the
    resolution detection works at (at most `DetectorOptions.max_pixels`, where the recall trade-off is).
    Face boxes and landmarks are in the pixels of this reduced image.
    """

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    min_side: int = 16
    # Longer side over shorter side: 10 admits every camera and phone panorama (at most about 1:8).
    max_aspect: float = 10.0
    work_pixels: int = 4_000_000
    # What decoding may allocate, estimated from the declared size and format (see `decode_bytes`).
    max_decode_bytes: int = 256 * 1024 * 1024


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
    """Bytes -> HxWx3 RGB uint8 of at most `limits.work_pixels`, EXIF orientation applied, any mode converted."""
    if not data:
        raise InvalidImage("the file is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes")
    img = _open_checked(data, limits)
    target = working_size(img.width, img.height, limits.work_pixels)
    try:
        # JPEG only (a no-op elsewhere): decode at the smallest DCT scale still at least `target`.
        img.draft(None, target)
        img.load()
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        rgb = _reduced_rgb(img, target)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image is truncated or corrupt ({exc})") from exc
    if orientation in _ORIENTATION:
        rgb = rgb.transpose(_ORIENTATION[orientation])
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    """Refuse a size over the pixel limit, under the minimum side or beyond the aspect ratio limit."""
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(f"the image is {width}x{height} ({pixels} pixels); the limit is {limits.max_pixels} pixels")
    short, long = min(width, height), max(width, height)
    if short < limits.min_side:
        raise InvalidImage(f"the image is {width}x{height}; at least {limits.min_side} px per side is needed")
    if long > short * limits.max_aspect:
        raise InvalidImage(
            f"the image is {width}x{height}: one side is {long / short:.0f} times the other; "
            f"at most {limits.max_aspect:g} times is accepted"
        )


def working_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most `max_pixels`; unchanged when already within."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def decode_bytes(img: Image.Image) -> int:
    """An upper bound, from the header alone, of what decoding `img` allocates (measured per format).

    JPEG: libjpeg keeps every DCT coefficient (2 bytes each, per component at its sampling) of a progressive
    or multi-scan file, whatever the output scale, and the header cannot tell a crafted multi-scan file from
    a plain one, so every JPEG is charged that. WebP: libwebp's canvas and previous frame, a bytes copy and
    Pillow's image, four RGBA buffers. TIFF: Pillow's image and libtiff's RGBA buffer. Others: Pillow's image.
    """
    pixels = img.width * img.height
    if isinstance(img, JpegImagePlugin.JpegImageFile) and img.layer:  # MPO included
        h_max = max(h for _, h, _, _ in img.layer)
        v_max = max(v for _, _, v, _ in img.layer)
        return math.ceil(pixels * 2 * sum(h * v for _, h, v, _ in img.layer) / (h_max * v_max))
    per_pixel = {"WEBP": 16, "TIFF": 8}.get(img.format or "", _PIXEL_BYTES.get(img.mode, 4))
    return pixels * per_pixel


def _open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    """Open lazily and check the declared size before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image declares too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not an image in a known format (JPEG, PNG, WebP, BMP, TIFF, GIF)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image header is corrupt ({exc})") from exc
    check_dimensions(img.width, img.height, limits)
    need = decode_bytes(img)
    if need > limits.max_decode_bytes:
        raise ImageTooLarge(
            f"decoding this {img.width}x{img.height} {img.format} would take about {need >> 20} MB; "
            f"the limit is {limits.max_decode_bytes >> 20} MB"
        )
    return img


def _reduced_rgb(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """The decoded image as RGB of size `target`; never a full-size converted copy."""
    top = _grey_top(img)
    if img.size == target:
        return _to_rgb(img, top)
    # A box reduction by an integer factor (strip by strip unless already RGB), then one exact resize.
    factor = max(1, min(img.width // target[0], img.height // target[1]))
    if img.mode == "RGB":
        reduced = img.reduce(factor) if factor > 1 else img
    else:
        reduced = Image.new("RGB", (math.ceil(img.width / factor), math.ceil(img.height / factor)))
        rows = max(1, STRIP_PIXELS // (img.width * factor)) * factor
        for y in range(0, img.height, rows):
            strip = _to_rgb(img.crop((0, y, img.width, min(img.height, y + rows))), top)
            reduced.paste(strip.reduce(factor) if factor > 1 else strip, (0, y // factor))
    return reduced if reduced.size == target else reduced.resize(target, Image.Resampling.LANCZOS)


def _grey_top(img: Image.Image) -> float:
    """The value that maps to 255 for 16- and 32-bit greys: 65535, or a 32-bit image's own maximum."""
    if img.mode not in ("I", "I;16", "I;16B", "I;16L"):
        return 255.0
    high = float(cast(tuple[float, float], img.getextrema())[1])
    return 65535.0 if img.mode.startswith("I;16") or high <= 65535 else high


def _to_rgb(img: Image.Image, top: float) -> Image.Image:
    """Any PIL mode -> RGB. Transparent pixels become white, 16-bit greys keep their brightness."""
    if img.mode == "RGB":
        return img
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float64)
            return Image.fromarray((arr * (255.0 / top)).round().clip(0, 255).astype(np.uint8)).convert("RGB")
        if img.mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(canvas, rgba).convert("RGB")
        return img.convert("RGB")
    except ValueError as exc:
        raise InvalidImage(f"the colour mode {img.mode} cannot be converted to RGB ({exc})") from exc


def encode_image(image: ImageArray, suffix: str = ".jpg", quality: int = 90) -> bytes:
    """An RGB image as JPEG (".jpg", at `quality`) or PNG (".png", lossless) bytes."""
    options = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix == ".jpg" else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), options)
    if not ok:
        raise InvalidImage(f"the image could not be encoded as {suffix}")
    return bytes(data.tobytes())

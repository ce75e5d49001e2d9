"""The dashboard's pictures are decoded as the workers decode them, so stored face boxes line up."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from dashboard.pictures import GREEN, boxed, open_image, thumbnail
from model.image_io import decode_image
from services.config import get_settings
from services.engine import pipeline_options


def _jpeg(width: int, height: int, orientation: int = 1) -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 50, width // 50, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.NEAREST)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def test_the_limits_are_the_workers() -> None:
    assert get_settings().image_limits == pipeline_options(get_settings()).limits


def test_a_large_rotated_photo_is_shown_at_the_working_size_the_boxes_refer_to() -> None:
    data = _jpeg(3000, 2000, orientation=6)  # 6 MP, shown rotated a quarter turn
    img = open_image(data)
    work = decode_image(data, get_settings().image_limits)
    assert img is not None and img.size == (work.shape[1], work.shape[0])
    assert img.width < img.height and img.width * img.height <= get_settings().image_limits.work_pixels
    assert np.array_equal(np.asarray(img), work)
    drawn = boxed(data, [[100.0, 200.0, 400.0, 500.0]], [""], [GREEN])
    assert drawn is not None and drawn.size == img.size
    assert drawn.getpixel((250, 200)) == GREEN  # the top edge, where the box says


def test_undecodable_or_missing_pictures_are_none(tmp_path: Path) -> None:
    assert open_image(b"not an image") is None
    assert open_image(_jpeg(1000, 1000)[:2000]) is None  # truncated
    assert open_image(tmp_path / "gone.jpg") is None
    assert thumbnail(tmp_path / "gone.jpg") is None


def test_a_stored_file_gives_a_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "face.jpg"
    path.write_bytes(_jpeg(600, 400))
    thumb = thumbnail(path, 160)
    assert thumb is not None and thumb.size == (160, 107)

"""Tests for model.image_io: every input is generated in memory with Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from model.errors import ImageTooLarge, InvalidImage
from model.image_io import ImageLimits, decode_image, load_image

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def two_tone(size: tuple[int, int] = (32, 32)) -> Image.Image:
    """Left half red, right half blue."""
    img = Image.new("RGB", size, BLUE)
    img.paste(RED, (0, 0, size[0] // 2, size[1]))
    return img


def assert_rgb(arr: np.ndarray, height: int, width: int) -> None:
    assert arr.shape == (height, width, 3)
    assert arr.dtype == np.uint8
    assert arr.flags.c_contiguous


def assert_close(pixel: np.ndarray, expected: tuple[int, int, int], tol: int) -> None:
    assert np.abs(pixel.astype(int) - np.array(expected)).max() <= tol, (pixel.tolist(), expected)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR is rewritten to declare width x height (never decoded)."""
    data = bytearray(encode(Image.new("1", (16, 16)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# --- decoding -------------------------------------------------------------------------------


def test_png_decodes_exactly_to_rgb() -> None:
    arr = decode_image(encode(two_tone((40, 24)), "PNG"))
    assert_rgb(arr, 24, 40)
    assert tuple(arr[0, 0]) == RED
    assert tuple(arr[-1, -1]) == BLUE


def test_jpeg_decodes_to_rgb() -> None:
    arr = decode_image(encode(two_tone((64, 48)), "JPEG", quality=95))
    assert_rgb(arr, 48, 64)
    assert_close(arr[24, 8], RED, tol=8)
    assert_close(arr[24, 56], BLUE, tol=8)


def test_png_alpha_transparent_becomes_white() -> None:
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent black
    img.paste((255, 0, 0, 255), (0, 0, 16, 32))  # opaque red
    img.paste((255, 0, 0, 128), (16, 0, 24, 32))  # half-transparent red
    arr = decode_image(encode(img, "PNG"))
    assert_rgb(arr, 32, 32)
    assert tuple(arr[0, 0]) == RED
    assert tuple(arr[0, 31]) == WHITE
    assert_close(arr[0, 20], (255, 127, 127), tol=1)


def test_grayscale_l_replicates_channels() -> None:
    img = Image.new("L", (30, 20), 0)
    img.paste(128, (10, 0, 20, 20))
    img.paste(255, (20, 0, 30, 20))
    arr = decode_image(encode(img, "PNG"))
    assert_rgb(arr, 20, 30)
    assert tuple(arr[5, 5]) == (0, 0, 0)
    assert tuple(arr[5, 15]) == (128, 128, 128)
    assert tuple(arr[5, 25]) == WHITE


def sixteen_bit_png(levels8: list[int]) -> bytes:
    """A 16-bit grey PNG of vertical bands; each 8-bit level v is stored as v * 257."""
    cols = np.repeat(np.array(levels8, dtype=np.uint16) * 257, 8)
    img = Image.fromarray(np.tile(cols, (16, 1)).astype(np.uint16))
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    return data


def test_16bit_png_full_range_maps_to_8bit() -> None:
    arr = decode_image(sixteen_bit_png([0, 85, 170, 255]))
    assert_rgb(arr, 16, 32)
    for band, level in enumerate([0, 85, 170, 255]):
        assert_close(arr[0, band * 8], (level, level, level), tol=1)


def test_16bit_png_keeps_brightness_of_8bit_equivalent() -> None:
    arr = decode_image(sixteen_bit_png([30, 100, 200]))
    for band, level in enumerate([30, 100, 200]):
        assert_close(arr[0, band * 8], (level, level, level), tol=1)


def test_cmyk_jpeg_converts_to_rgb() -> None:
    img = Image.new("CMYK", (32, 32), (0, 0, 0, 0))  # white
    img.paste((0, 255, 255, 0), (0, 0, 16, 32))  # red
    data = encode(img, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    arr = decode_image(data)
    assert_rgb(arr, 32, 32)
    assert_close(arr[16, 4], RED, tol=10)
    assert_close(arr[16, 28], WHITE, tol=10)


def palette_image() -> Image.Image:
    img = Image.new("P", (32, 32), 0)
    img.putpalette([*BLUE, *RED])
    img.paste(1, (0, 0, 16, 32))
    return img


def test_palette_without_transparency() -> None:
    arr = decode_image(encode(palette_image(), "PNG"))
    assert_rgb(arr, 32, 32)
    assert tuple(arr[0, 0]) == RED
    assert tuple(arr[0, 31]) == BLUE


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparent_index_becomes_white(fmt: str) -> None:
    data = encode(palette_image(), fmt, transparency=0)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    arr = decode_image(data)
    assert tuple(arr[0, 0]) == RED
    assert tuple(arr[0, 31]) == WHITE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_6_is_applied(fmt: str) -> None:
    # Stored 48 wide x 24 high, red block in the top-left corner, blue elsewhere.
    img = Image.new("RGB", (48, 24), BLUE)
    img.paste(RED, (0, 0, 16, 8))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    arr = decode_image(encode(img, fmt, exif=exif.tobytes()))
    # Displayed 24 wide x 48 high; the top-left corner moved to the top-right.
    assert_rgb(arr, 48, 24)
    assert_close(arr[4, 20], RED, tol=10)
    assert_close(arr[4, 3], BLUE, tol=10)
    assert_close(arr[44, 20], BLUE, tol=10)


def test_min_side_boundary_is_accepted() -> None:
    assert decode_image(encode(two_tone((16, 100)), "PNG")).shape == (100, 16, 3)


def test_load_image_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "face.png"
    two_tone((20, 30)).save(path)
    arr = load_image(path)
    assert_rgb(arr, 30, 20)
    assert tuple(arr[0, 0]) == RED


# --- refusals -------------------------------------------------------------------------------


def test_image_too_large_is_an_invalid_image() -> None:
    assert issubclass(ImageTooLarge, InvalidImage)


def test_empty_bytes_refused() -> None:
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"")


def test_random_bytes_refused() -> None:
    junk = np.random.default_rng(0).bytes(4096)
    with pytest.raises(InvalidImage, match="not an image") as info:
        decode_image(junk)
    assert not isinstance(info.value, ImageTooLarge)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_refused(fmt: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(InvalidImage, match=r"truncated|corrupt") as info:
        decode_image(data[: len(data) // 2])
    assert not isinstance(info.value, ImageTooLarge)


def test_tiny_image_refused() -> None:
    with pytest.raises(InvalidImage, match=r"15x100.*16 px") as info:
        decode_image(encode(two_tone((15, 100)), "PNG"))
    assert not isinstance(info.value, ImageTooLarge)


def test_byte_limit_refused() -> None:
    data = encode(two_tone(), "PNG")
    with pytest.raises(ImageTooLarge, match="bytes"):
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))
    assert decode_image(data, ImageLimits(max_bytes=len(data))).shape == (32, 32, 3)


def test_byte_limit_refused_for_file_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(two_tone(), "PNG"))
    with pytest.raises(ImageTooLarge) as info:
        load_image(path, ImageLimits(max_bytes=10))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "side",
    [
        20_000,  # over twice Pillow's MAX_IMAGE_PIXELS: DecompressionBombError
        10_000,  # between once and twice: DecompressionBombWarning
        8_000,  # under Pillow's limit, over the default max_pixels of 50M
    ],
)
def test_decompression_bomb_refused(side: int) -> None:
    data = png_declaring(side, side)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(data)


def test_pixel_limit_refused_for_real_image() -> None:
    data = encode(two_tone((100, 100)), "PNG")
    with pytest.raises(ImageTooLarge, match="10000 pixels"):
        decode_image(data, ImageLimits(max_pixels=9_999))
    assert decode_image(data, ImageLimits(max_pixels=10_000)).shape == (100, 100, 3)


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.jpg"
    with pytest.raises(InvalidImage) as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, ImageTooLarge)


def test_load_image_decode_error_names_path(tmp_path: Path) -> None:
    path = tmp_path / "junk.jpg"
    path.write_bytes(b"definitely not a jpeg" * 10)
    with pytest.raises(InvalidImage, match="not an image") as info:
        load_image(str(path))
    assert str(path) in str(info.value)


# --- memory bounds: slivers, reduced decoding, decoder budgets --------------------------------------


def test_thin_image_refused_before_decoding() -> None:
    # The 9 KB PNG of issue 10: 3 MP, within every other limit, enlarged 14x by detection before the fix.
    with pytest.raises(InvalidImage, match=r"16x187500: one side is 11719 times the other; at most 10"):
        decode_image(png_declaring(16, 187_500))


@pytest.mark.parametrize(("size", "accepted"), [((20, 200), True), ((200, 20), True), ((20, 201), False)])
def test_aspect_ratio_limit(size: tuple[int, int], accepted: bool) -> None:
    data = encode(two_tone(size), "PNG")
    if accepted:
        assert decode_image(data).shape == (size[1], size[0], 3)
    else:
        with pytest.raises(InvalidImage, match="times the other"):
            decode_image(data)


def test_large_jpeg_is_decoded_reduced() -> None:
    data = encode(two_tone((1600, 1200)), "JPEG", quality=90)
    limits = ImageLimits(work_pixels=120_000)
    arr = decode_image(data, limits)
    assert_rgb(arr, 300, 400)  # libjpeg decodes at 1/4 scale directly: 1600x1200 is never in memory
    assert_close(arr[150, 50], RED, tol=12)
    assert_close(arr[150, 350], BLUE, tol=12)


@pytest.mark.parametrize("size", [(4001, 3000), (3000, 4001), (2500, 2499)])
def test_decoded_pixels_never_exceed_the_working_size(size: tuple[int, int]) -> None:
    limits = ImageLimits(work_pixels=1_000_000)
    arr = decode_image(encode(two_tone(size), "JPEG", quality=50), limits)
    assert arr.shape[0] * arr.shape[1] <= limits.work_pixels
    assert abs(arr.shape[1] / arr.shape[0] - size[0] / size[1]) < 0.01


def test_large_grey_png_is_reduced_strip_by_strip() -> None:
    img = Image.new("L", (2400, 1000), 0)  # 2.4 MP: several strips
    img.paste(255, (0, 500, 2400, 1000))
    arr = decode_image(encode(img, "PNG"), ImageLimits(work_pixels=150_000))
    assert_rgb(arr, 250, 600)
    assert tuple(arr[10, 300]) == (0, 0, 0)
    assert tuple(arr[240, 300]) == WHITE


def test_large_rgba_png_is_composited_on_white_when_reduced() -> None:
    img = Image.new("RGBA", (1200, 1200), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (600, 0, 1200, 1200))
    arr = decode_image(encode(img, "PNG"), ImageLimits(work_pixels=90_000))
    assert_rgb(arr, 300, 300)
    assert tuple(arr[150, 50]) == WHITE
    assert tuple(arr[150, 250]) == RED


def test_32bit_grey_strips_share_one_brightness_scale() -> None:
    # 2 MP of 32-bit grey: the top strips hold 200000 (the maximum, so white), the bottom ones 100000.
    values = np.full((2048, 1024), 100_000, dtype=np.int32)
    values[:1024] = 200_000
    arr = decode_image(encode(Image.fromarray(values, mode="I"), "TIFF"), ImageLimits(work_pixels=32_768))
    assert_rgb(arr, 256, 128)
    assert tuple(arr[10, 64]) == WHITE
    assert_close(arr[250, 64], (128, 128, 128), tol=1)


@pytest.mark.parametrize(("fmt", "mode"), [("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "RGBA")])
def test_exif_orientation_is_applied_to_reduced_images(fmt: str, mode: str) -> None:
    # Stored 1600 wide x 800 high with a red top-left corner; displayed 800 wide x 1600 high.
    img = Image.new(mode, (1600, 800), BLUE)
    img.paste(RED, (0, 0, 400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    arr = decode_image(encode(img, fmt, exif=exif.tobytes()), ImageLimits(work_pixels=80_000))
    assert_rgb(arr, 400, 200)
    assert_close(arr[20, 180], RED, tol=12)  # the top-left corner moved to the top-right
    assert_close(arr[20, 20], BLUE, tol=12)
    assert_close(arr[380, 180], BLUE, tol=12)


def test_decoder_budget_refuses_an_expensive_format_before_decoding() -> None:
    data = encode(two_tone((64, 64)), "WEBP")  # libwebp and Pillow hold four RGBA copies: 16 bytes a pixel
    with pytest.raises(ImageTooLarge, match=r"64x64 WEBP would take"):
        decode_image(data, ImageLimits(max_decode_bytes=64 * 64 * 16 - 1))
    assert decode_image(data, ImageLimits(max_decode_bytes=64 * 64 * 16)).shape == (64, 64, 3)


@pytest.mark.parametrize(("subsampling", "accepted"), [("4:2:0", True), ("4:4:4", False)])
def test_jpeg_budget_counts_every_dct_coefficient(subsampling: str, accepted: bool) -> None:
    # A progressive (or multi-scan) JPEG keeps all its coefficients, whatever the output scale: 2 bytes per
    # sample, 3 samples a pixel at 4:4:4 and 1.5 at 4:2:0.
    data = encode(two_tone((64, 64)), "JPEG", subsampling=subsampling, progressive=True)
    limits = ImageLimits(max_decode_bytes=64 * 64 * 4)
    if accepted:
        assert decode_image(data, limits).shape == (64, 64, 3)
    else:
        with pytest.raises(ImageTooLarge, match="JPEG would take"):
            decode_image(data, limits)


def test_formats_without_a_measured_decoder_are_refused() -> None:
    with pytest.raises(InvalidImage, match="not an image in a known format"):
        decode_image(encode(two_tone(), "PPM"))

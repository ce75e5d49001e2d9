"""A low-resolution LFW: the central 150x150 of every photo downscaled to 64x64 (faces of about 45 px).

  python scripts/make_lowres_lfw.py [--lfw DIR] [--out DIR] [--crop 150] [--size 64]

File names are those of LFW and the split/pairs CSVs are copied beside the images, so
`verify_pairs_folds.csv` and `gallery_split.csv` apply unchanged (`evaluate.py verify --root OUT ...`).
LFW defaults to FACEREG_DATASETS/lfw; OUT to FACEREG_DATA_DIR/datasets/lfw-64 (never inside git).
Photos already written are kept, so a run that was stopped goes on where it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model.evaluation.protocols import DatasetError
from model.image_io import encode_image, load_image
from scripts.cli import parser, print_json, run
from scripts.cli_args import bounded_int, existing_dir
from services.config import get_settings
from services.storage.private_files import private_mkdir, write_private

JPEG_QUALITY = 95


def lowres(image: np.ndarray, crop: int, size: int) -> np.ndarray:
    """The central `crop` square (the whole short side when smaller), area-averaged down to `size`."""
    h, w = image.shape[:2]
    side = min(crop, h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    centre = image[y0 : y0 + side, x0 : x0 + side]
    return np.asarray(cv2.resize(centre, (size, size), interpolation=cv2.INTER_AREA))


def make_variant(lfw: Path, out: Path, crop: int, size: int) -> dict[str, object]:
    photos = sorted((lfw / "images").glob("*/*.jpg"))
    if not photos:
        raise DatasetError(f"{lfw}/images holds no <person>/<photo>.jpg: not an LFW folder")
    written = 0
    for src in tqdm(photos, desc=f"lfw-{size}", unit="img"):
        dest = out / src.relative_to(lfw)
        if dest.is_file():
            continue
        small = lowres(load_image(src), crop, size)
        # Written whole or not at all: a stopped run never leaves half a photo.
        write_private(dest, encode_image(small, ".jpg", JPEG_QUALITY))
        written += 1
    for csv in sorted(lfw.glob("*.csv")):
        shutil.copyfile(csv, out / csv.name)
    manifest = {"source": str(lfw), "photos": len(photos), "crop": crop, "size": size, "jpeg_quality": JPEG_QUALITY}
    (out / "variant.json").write_text(json.dumps(manifest, indent=2))
    return {**manifest, "out": str(out), "written": written}


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("--lfw", type=existing_dir, help="the LFW folder (holding images/)")
    cli.add_argument("--out", type=Path, help="where the variant goes")
    cli.add_argument("--crop", type=bounded_int(16, 250), default=150)
    cli.add_argument("--size", type=bounded_int(16, 250), default=64)
    args = cli.parse_args()
    settings = get_settings()
    lfw = args.lfw or (settings.datasets / "lfw" if settings.datasets else None)
    if lfw is None or not lfw.is_dir():
        raise DatasetError("LFW not found: pass --lfw DIR or set FACEREG_DATASETS to the folder holding lfw/")
    out = args.out or settings.data_dir / "datasets" / f"lfw-{args.size}"
    private_mkdir(out)
    print_json(make_variant(lfw, out, args.crop, args.size))
    return 0


if __name__ == "__main__":
    run(main)

"""Download model weights from their upstream URLs (needs internet).

  python scripts/download_weights.py mobilefacenet [--runtime torch|onnx|all] [--dest DIR]
  python scripts/download_weights.py arcface-r50 --runtime onnx
  python scripts/download_weights.py yunet
  python scripts/download_weights.py retinaface

Files go to the first FACEREG_MODEL_DIR entry (default ~/.cache/facereg/models), in a
folder named after the model; their sha256 is checked when the zoo records one. Custom
models (custom:<name>) are not downloaded: scripts/train.py makes them, with their card.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from model.detection.factory import RETINAFACE_FILE, RETINAFACE_URL, YUNET_FILE
from model.errors import ModelUnavailable
from model.model_card import CUSTOM_DIR, TRAIN_HINT, is_custom
from model.weights import download
from model.zoo import ZOO, WeightsFile
from scripts.cli import parser, run, setup_logging
from services.config import get_settings

log = logging.getLogger("download_weights")

DETECTOR_FILES = {
    "yunet": WeightsFile(
        YUNET_FILE,
        "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
        "https://github.com/ShiqiYu/libfacedetection.train/raw/0047ac24afb1a50a0c6105001c89d1b5b805dbf1/onnx/yunet_n_dynamic.onnx",
    ),
    "retinaface": WeightsFile(
        RETINAFACE_FILE, "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220", RETINAFACE_URL
    ),
}


CUSTOM_NOT_DOWNLOADED = (
    f"custom models are not downloaded: {TRAIN_HINT}, which writes its card and weights into "
    f"<model dir>/{CUSTOM_DIR}/<name>/"
)


def not_custom(name: str) -> str:
    """The argument type of `name`: a custom model gets its own message, not argparse's list of choices."""
    if is_custom(name):
        raise argparse.ArgumentTypeError(CUSTOM_NOT_DOWNLOADED)
    return name


def files_for(name: str, runtime: str) -> tuple[str, list[WeightsFile]]:
    if is_custom(name):
        raise ModelUnavailable(CUSTOM_NOT_DOWNLOADED)
    if name in DETECTOR_FILES:
        return name, [DETECTOR_FILES[name]]
    if name not in ZOO:
        raise ModelUnavailable(f"unknown model {name!r}; choose one of {', '.join([*ZOO, *DETECTOR_FILES])}")
    spec = ZOO[name]
    wanted = spec.runtimes if runtime == "all" else (runtime,)
    files = [spec.weights[r] for r in wanted if r in spec.weights]
    if not files:
        raise ModelUnavailable(f"{name} has no {runtime!r} runtime; it has {', '.join(spec.runtimes)}")
    return spec.subdir or name, files


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("name", type=not_custom, choices=[*ZOO, *DETECTOR_FILES])
    cli.add_argument("--runtime", default="all", choices=["all", "torch", "onnx", "dlib"])
    cli.add_argument("--dest", type=Path, help="model dir (default: the first FACEREG_MODEL_DIR entry)")
    args = cli.parse_args()
    setup_logging()
    dest_root = args.dest or get_settings().model_dir[0]
    subdir, files = files_for(args.name, args.runtime)
    for wf in files:
        dest = dest_root / subdir / wf.filename
        if dest.is_file():
            log.info("%s already present", dest)
            continue
        if wf.url is None:
            raise ModelUnavailable(
                f"{wf.filename} has no public download URL; see the model's notes in model/zoo.py and put it at {dest}"
            )
        log.info("downloading %s -> %s", wf.url, dest)
        download(wf.url, dest, wf.sha256, wf.archive_member)
        log.info("saved %s", dest)
    return 0


if __name__ == "__main__":
    run(main)

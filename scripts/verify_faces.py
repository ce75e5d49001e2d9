"""1:1 verification of two images.

python scripts/verify_faces.py IMG_A IMG_B [--model M] [--runtime R] [--threshold T]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.cli import print_json, run, setup_logging
from services.config import get_settings
from services.verification import verify_images


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image_a", type=Path)
    parser.add_argument("image_b", type=Path)
    parser.add_argument("--model", help="arcface-r50 | mobilefacenet | dlib | auto (default: FACEREG_MODEL)")
    parser.add_argument("--runtime", choices=["auto", "torch", "onnx", "dlib"])
    parser.add_argument("--detector", choices=["mtcnn", "yunet"])
    parser.add_argument("--threshold", type=float, help="cosine threshold (default: the model's calibrated one)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    setup_logging(args.verbose)
    result = verify_images(
        get_settings(),
        args.image_a,
        args.image_b,
        model=args.model,
        runtime=args.runtime,
        detector=args.detector,
        threshold=args.threshold,
    )
    print_json(result)
    return 0


if __name__ == "__main__":
    run(main)

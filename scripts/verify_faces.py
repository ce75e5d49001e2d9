"""1:1 verification of two images.

python scripts/verify_faces.py IMG_A IMG_B [--model M] [--runtime R] [--threshold T]
"""

from __future__ import annotations

from scripts.cli import parser, print_json, run, setup_logging
from scripts.cli_args import SIMILARITY, existing_file
from services.config import get_settings
from services.search.verification import verify_images


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("image_a", type=existing_file)
    cli.add_argument("image_b", type=existing_file)
    cli.add_argument("--model", help="arcface-r50 | mobilefacenet | dlib | auto (default: FACEREG_MODEL)")
    cli.add_argument("--runtime", choices=["auto", "torch", "onnx", "dlib"])
    cli.add_argument("--detector", choices=["mtcnn", "yunet", "retinaface"])
    cli.add_argument("--threshold", type=SIMILARITY, help="cosine threshold from -1 to 1 (default: the model's)")
    cli.add_argument("-v", "--verbose", action="store_true")
    args = cli.parse_args()
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

"""Re-embed a gallery with another model into a new collection and switch to it atomically; without --model (or
with the gallery's own model), build its collection again with the FACEREG_HNSW_* settings (nothing re-embedded).

python scripts/reindex.py GALLERY [--model NAME] [--runtime R]
"""

from __future__ import annotations

from scripts.cli import parser, print_json, run, setup_logging
from services.config import get_settings
from services.context import open_context
from services.engine import build_pipeline
from services.registry.consistency import rebuild_index, reindex


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("gallery")
    cli.add_argument("--model", help="arcface-r50 | mobilefacenet | dlib | custom:<name> (default: keep the model)")
    cli.add_argument("--runtime", choices=["auto", "torch", "onnx", "dlib"])
    args = cli.parse_args()
    setup_logging()
    settings = get_settings()
    if args.model is None:
        print_json(rebuild_index(open_context(settings), args.gallery, actor="cli"))
        return 0
    pipeline = build_pipeline(settings, model=args.model, runtime=args.runtime)
    print_json(reindex(open_context(settings, pipeline), args.gallery, pipeline, actor="cli"))
    return 0


if __name__ == "__main__":
    run(main)

"""Near-identical images in a folder or a gallery; keep the best of each group.

  python scripts/dedup.py folder DIR [--similarity S] [--resolve --quarantine QDIR]
  python scripts/dedup.py gallery NAME [--similarity S] [--resolve]
  python scripts/dedup.py review NAME [--threshold T]      (queue cross-person look-alikes for review)

Nothing is ever deleted silently: `--resolve` moves the other members of each group to a quarantine
folder (with a manifest) or, in a gallery, removes their faces and keeps a copy of the originals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.cli import parser, print_json, run, setup_logging
from scripts.cli_args import SIMILARITY, existing_dir
from services.config import get_settings
from services.context import open_context
from services.dedup.duplicates import (
    find_folder_duplicates,
    find_gallery_duplicates,
    resolve_folder_duplicates,
    resolve_gallery_duplicates,
    scan_identity_candidates,
)
from services.engine import build_pipeline


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("mode", choices=["folder", "gallery", "review"])
    cli.add_argument("target", help="a folder (mode folder) or a gallery name")
    cli.add_argument("--similarity", type=SIMILARITY, default=0.7, help="embedding cosine from -1 to 1")
    cli.add_argument("--threshold", type=SIMILARITY, help="review: match threshold (default: the gallery's 1:N one)")
    cli.add_argument("--resolve", action="store_true", help="keep the best of each group")
    cli.add_argument("--quarantine", type=Path, default=Path("quarantine"))
    args = cli.parse_args()
    if args.mode == "folder":
        try:
            folder = existing_dir(args.target)
        except argparse.ArgumentTypeError as exc:
            cli.error(f"argument target: {exc}")
    setup_logging()
    settings = get_settings()
    if args.mode == "folder":
        groups, failures = find_folder_duplicates(build_pipeline(settings), folder, args.similarity)
        moved = resolve_folder_duplicates(groups, args.quarantine) if args.resolve else []
        shown = {path: info.to_dict() for path, info in failures.items()}
        print_json({"groups": [g.to_dict() for g in groups], "failures": shown, "moved": len(moved)})
        return 0
    ctx = open_context(settings)
    if args.mode == "review":
        print_json(
            {"gallery": args.target, "new_candidates": scan_identity_candidates(ctx, args.target, args.threshold)}
        )
        return 0
    groups = find_gallery_duplicates(ctx, args.target, args.similarity)
    removed = resolve_gallery_duplicates(ctx, args.target, groups, actor="cli") if args.resolve else 0
    print_json({"groups": [g.to_dict() for g in groups], "removed_faces": removed})
    return 0


if __name__ == "__main__":
    run(main)

"""Repair every difference between MongoDB (the truth) and Chroma (its projection) for galleries.

python scripts/reconcile.py [GALLERY ...]     (default: every gallery)
"""

from __future__ import annotations

from scripts.cli import parser, print_json, run, setup_logging
from services.config import get_settings
from services.context import open_context
from services.registry.consistency import reconcile
from services.registry.galleries import list_galleries


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("galleries", nargs="*")
    args = cli.parse_args()
    setup_logging()
    ctx = open_context(get_settings())
    names = args.galleries or [g.name for g in list_galleries(ctx)]
    print_json({"galleries": [reconcile(ctx, name).to_dict() for name in names]})
    return 0


if __name__ == "__main__":
    run(main)

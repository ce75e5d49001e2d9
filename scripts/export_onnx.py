"""Export a model's PyTorch weights to ONNX and check parity.

  python scripts/export_onnx.py mobilefacenet [--out FILE] [--min-cosine 0.9999]
  python scripts/export_onnx.py custom:NAME

Prints one JSON object with the output path and the lowest torch/ONNX cosine; exits 1 when
the parity is under --min-cosine (the file is then removed). A custom model (scripts/train.py)
is exported from its card's own weights (their sha256 is checked) to <name>.onnx beside its card,
and the card then records that file as the model's onnx runtime (not with --out).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from model.backbones import load_backbone
from model.embedders.torch_embedder import build_backbone
from model.export import export_onnx, onnx_parity
from model.model_card import custom_name, find_card, is_custom, read_card, write_card
from model.weights import sha256_file, verify_sha256
from model.zoo import ModelSpec, WeightsFile, get_spec, locate_weights
from scripts.cli import parser, print_json, run, setup_logging
from scripts.cli_args import SIMILARITY, existing_file
from services.config import get_settings


def default_output(spec: ModelSpec, model_dir: Path) -> Path:
    """The onnx runtime's own file name, unless the zoo pins that file's hash to an upstream copy."""
    folder = model_dir / (spec.subdir or spec.name)
    onnx = spec.weights.get("onnx")
    if onnx is not None and onnx.sha256 is None:
        return folder / onnx.filename
    return folder / f"{spec.name}.export.onnx"


def card_onnx(card_path: Path) -> Path:
    """Where a custom model's onnx file goes: `<name>.onnx` beside its card."""
    return card_path.parent / f"{card_path.parent.name}.onnx"


def register_onnx(card_path: Path, onnx: Path) -> None:
    """Record `onnx` (beside the card) and its sha256 in the card, as the custom model's onnx runtime."""
    card = read_card(card_path)
    weights = {**card.weights, "onnx": WeightsFile(onnx.name, sha256_file(onnx))}
    write_card(card_path.parents[2], replace(card, weights=weights))  # <model dir>/custom/<name>/card.json


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("model", help="a zoo model or custom:<name>")
    cli.add_argument("--weights", type=existing_file, help="PyTorch weights (default: found in FACEREG_MODEL_DIR)")
    cli.add_argument("--out", type=Path, help="default: where the onnx runtime looks for it (see below)")
    cli.add_argument("--min-cosine", type=SIMILARITY, default=0.9999)
    args = cli.parse_args()
    setup_logging()
    settings = get_settings()
    spec = get_spec(args.model, settings.model_dir)
    card = find_card(custom_name(spec.name), settings.model_dir) if is_custom(spec.name) else None
    weights = args.weights or locate_weights(spec, "torch", settings.model_dir)
    if card is not None:
        verify_sha256(weights, spec.weights["torch"].sha256)  # the onnx twin of the card's own weights
    net = load_backbone(build_backbone(spec), weights)
    out = args.out or (card_onnx(card) if card is not None else default_output(spec, settings.model_dir[0]))
    export_onnx(net, out, spec.preprocessing.input_size)
    cosine = onnx_parity(net, out, input_size=spec.preprocessing.input_size)
    ok = cosine >= args.min_cosine
    if not ok:
        out.unlink(missing_ok=True)
    updated = card if ok and card is not None and args.out is None else None
    if updated is not None:
        register_onnx(updated, out)
    report = {"model": spec.name, "weights": str(weights), "onnx": str(out), "min_cosine": cosine, "ok": ok}
    print_json({**report, "card": str(updated) if updated is not None else None})
    return 0 if ok else 1


if __name__ == "__main__":
    run(main)

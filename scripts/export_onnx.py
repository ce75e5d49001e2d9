"""Export a model's PyTorch weights to ONNX and check parity.

  python scripts/export_onnx.py mobilefacenet [--out FILE] [--min-cosine 0.9999]

Prints one JSON object with the output path and the lowest torch/ONNX cosine; exits 1 when
the parity is under --min-cosine (the file is then removed).
"""

from __future__ import annotations

from pathlib import Path

from model.backbones import load_backbone
from model.embedders.torch_embedder import build_backbone
from model.export import export_onnx, onnx_parity
from model.zoo import ModelSpec, get_spec, locate_weights
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


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("model")
    cli.add_argument("--weights", type=existing_file, help="PyTorch weights (default: found in FACEREG_MODEL_DIR)")
    cli.add_argument("--out", type=Path, help="default: where the onnx runtime looks for it (see below)")
    cli.add_argument("--min-cosine", type=SIMILARITY, default=0.9999)
    args = cli.parse_args()
    setup_logging()
    settings = get_settings()
    spec = get_spec(args.model)
    weights = args.weights or locate_weights(spec, "torch", settings.model_dir)
    net = load_backbone(build_backbone(spec), weights)
    out = args.out or default_output(spec, settings.model_dir[0])
    export_onnx(net, out, spec.preprocessing.input_size)
    cosine = onnx_parity(net, out, input_size=spec.preprocessing.input_size)
    ok = cosine >= args.min_cosine
    if not ok:
        out.unlink(missing_ok=True)
    print_json({"model": spec.name, "weights": str(weights), "onnx": str(out), "min_cosine": cosine, "ok": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    run(main)

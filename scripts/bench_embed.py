"""`benchmark.py embed`: detection and embedding speed per model and runtime, and peak memory.

Each configuration runs in its own process so that its peak RSS is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from model.backbones import iresnet50
from model.detection import DetectorOptions, create_detector, detect_faces, primary_face
from model.embedders import create_embedder
from model.embedders.base import ChipEmbedder
from model.embedders.onnx_embedder import OnnxEmbedder
from model.embedders.torch_embedder import TorchEmbedder
from model.export import export_onnx
from model.image_io import load_image
from model.types import ImageArray
from model.zoo import contract_for, get_spec
from services.config import Settings

# (model, runtime); arcface-r50 has no pretrained weights here, so its speed is measured on a
# randomly initialised network of the same architecture (speed does not depend on the values).
CONFIGS = [
    ("mobilefacenet", "torch"),
    ("mobilefacenet", "onnx"),
    ("mobilefacenet", "onnx-dynamic"),
    ("arcface-r50", "torch"),
    ("arcface-r50", "onnx"),
    ("dlib", "dlib"),
]
DETECTORS = ("mtcnn", "yunet")


def sample_images(settings: Settings, n: int) -> list[ImageArray]:
    if settings.datasets is None or not (settings.datasets / "lfw" / "images").is_dir():
        raise SystemExit("benchmark embed needs LFW images under FACEREG_DATASETS/lfw/images")
    paths = sorted((settings.datasets / "lfw" / "images").glob("*/*.jpg"))[::97][:n]
    return [load_image(p) for p in paths]


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Seconds per call, after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_detector(settings: Settings, name: str, n_images: int) -> dict[str, Any]:
    torch.set_num_threads(settings.torch_threads or 2)
    images = sample_images(settings, n_images)
    detector = create_detector(name, settings.model_dir, "cpu")
    opts = DetectorOptions()
    per_image = timed(lambda: [detect_faces(detector, im, opts) for im in images], 1) / len(images)
    return {
        "detector": name,
        "ms_per_image": round(per_image * 1000, 2),
        "image_size": list(images[0].shape[:2]),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _random_r50(runtime: str, tmp: Path, device: str) -> ChipEmbedder:
    spec = get_spec("arcface-r50")
    net = iresnet50()
    # Give BatchNorm realistic statistics so activations stay finite in eval mode.
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        net.train()(torch.randn(16, 3, 112, 112))
    net.eval()
    weights = tmp / "r50.pth"
    torch.save(net.state_dict(), weights)
    contract = contract_for(spec, weights, flip=False)
    if runtime == "torch":
        return TorchEmbedder(spec, contract, weights, device)
    return OnnxEmbedder(spec, contract, export_onnx(net, tmp / "r50.onnx"), device, threads=torch.get_num_threads())


def _embedder(settings: Settings, model: str, runtime: str, tmp: Path, device: str) -> ChipEmbedder:
    if model == "arcface-r50":
        return _random_r50(runtime, tmp, device)
    if runtime == "onnx-dynamic":
        torch_emb = create_embedder(model, "torch", settings.model_dir, "cpu")
        assert isinstance(torch_emb, TorchEmbedder)
        path = export_onnx(torch_emb.net, tmp / f"{model}.onnx")
        return OnnxEmbedder(torch_emb.spec, torch_emb.contract, path, device, threads=torch.get_num_threads())
    emb = create_embedder(model, runtime, settings.model_dir, device)
    assert isinstance(emb, ChipEmbedder)
    return emb


def bench_embedder(
    settings: Settings, model: str, runtime: str, n_images: int, device: str = "cpu", batch_size: int = 32
) -> dict[str, Any]:
    """Faces/s one at a time and in batches of `batch_size`; on CUDA, torch runs fp16 and ONNX Runtime its CUDA
    provider when installed (onnxruntime-gpu; `device` in the result says where it ran)."""
    torch.set_num_threads(settings.torch_threads or 2)
    images = sample_images(settings, n_images)
    detector = create_detector("mtcnn", settings.model_dir, "cpu")
    with tempfile.TemporaryDirectory() as tmpdir:
        emb = _embedder(settings, model, runtime, Path(tmpdir), device)
        emb.batch_size = batch_size
        chips = []
        for im in images:
            faces = detect_faces(detector, im, DetectorOptions())
            if faces:
                chips.append(emb.align(im, primary_face(faces, *im.shape[:2])))
        batch = (chips * (batch_size // len(chips) + 1))[:batch_size]
        t1 = timed(lambda: [emb.embed([c]) for c in chips], 2) / len(chips)
        t_batched = timed(lambda: emb.embed(batch), 3) / len(batch)
        vec = emb.embed(chips[:1])
    return {
        "model": model,
        "runtime": runtime,
        "dim": int(vec.shape[1]),
        "weights": "random (speed only)" if model == "arcface-r50" else "pretrained",
        "faces_per_s_batch1": round(1.0 / t1, 1),
        "faces_per_s_batched": round(1.0 / t_batched, 1),
        "batch": batch_size,
        "device": emb.device,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "torch_threads": torch.get_num_threads(),
    }


def run_isolated(args: list[str]) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter (`args`: an embed-one configuration, or a command and its
    arguments, like `train-one ...`); its last stdout line is its JSON result."""
    command = args if args[0].endswith("-one") else ["embed-one", *args]
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("benchmark.py")), *command],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"config": args, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def with_ratios(embedders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ONNX Runtime over PyTorch throughput for the same model, measured in this run."""
    by_key = {(e.get("model"), e.get("runtime")): e for e in embedders if "error" not in e}
    for e in embedders:
        base = by_key.get((e.get("model"), "torch"))
        if base and "error" not in e and e.get("runtime", "").startswith("onnx"):
            for b in ("batch1", "batched"):
                e[f"onnx_over_torch_{b}"] = round(e[f"faces_per_s_{b}"] / base[f"faces_per_s_{b}"], 2)
    return embedders


def summary_table(report: dict[str, Any]) -> str:
    lines = [
        "| model | runtime | device | faces/s b1 | faces/s batched | onnx/torch batched | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in report["embedders"]:
        if "error" in e:
            lines.append(f"| {e['config']} | error: {e['error']} | | | | | |")
            continue
        ratio = e.get("onnx_over_torch_batched", "")
        cells = [e["model"], e["runtime"], e.get("device", "cpu"), e["faces_per_s_batch1"], e["faces_per_s_batched"]]
        cells += [ratio, e["peak_rss_mb"]]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "| detector | ms/image | peak RSS MB |", "|---|---|---|"]
    lines += [
        f"| {d['detector']} | {d['ms_per_image']} | {d['peak_rss_mb']} |"
        for d in report["detectors"]
        if "error" not in d
    ]
    return "\n".join(lines)


def run_all(n_images: int, out: Path, device: str = "cpu", batch_size: int = 32) -> dict[str, Any]:
    report: dict[str, Any] = {
        "cpu_count": __import__("os").cpu_count(),
        "torch": torch.__version__,
        "n_images": n_images,
        "detectors": [run_isolated(["detector", d, str(n_images)]) for d in DETECTORS],
        "device": device,
        "batch": batch_size,
        "embedders": with_ratios(
            [run_isolated(["embedder", m, r, str(n_images), device, str(batch_size)]) for m, r in CONFIGS]
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    name = "embed" if device == "cpu" else f"embed-{device.split(':')[0]}"
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.md").write_text(
        f"# benchmark embed ({device}, batch {batch_size})\n\n" + summary_table(report) + "\n"
    )
    return report


def run_one(settings: Settings, args: list[str]) -> dict[str, Any]:
    if args[0] == "detector":
        return bench_detector(settings, args[1], int(args[2]))
    device, batch = (args[4], int(args[5])) if len(args) > 5 else ("cpu", 32)
    return bench_embedder(settings, args[1], args[2], int(args[3]), device, batch)

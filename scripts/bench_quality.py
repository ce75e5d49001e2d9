"""`benchmark.py quality`: recognition where it is hard. Detectors, small faces, flip TTA and person templates,
on full-resolution LFW and its 64-px variant (scripts/make_lowres_lfw.py).

Stages, in one process with one torch/OpenCV/ONNX thread:
1. timing: CPU ms per image of every detector setting, on `timing_images` images, before anything heavy runs;
2. detection: every detection (box, landmarks, score; no score threshold) per image, per resolution, detector and
   upscale_below, cached under FACEREG_DATA_DIR/cache/quality so no rerun or later stage detects again;
3. the small-face grid on the DEV pairs of the 64-px variant (verify_pairs_devtest.csv, not View 2):
   upscale_below x min_face_size per detector, chosen by dev accuracy (within `tolerance` of the best), then speed;
4. per resolution and detector: detection rate, centre-crop fallbacks, View 2 10-fold accuracy, AUC, TAR@FAR and
   gallery Top-1/Top-5 per template weight w, flip off and on; today's pipeline on the 64-px variant as baseline;
5. dlib on MTCNN's detections, flip off and on, on the first `dlib_folds` folds of View 2 (dlib is ~80 ms a face).

The primary face, the min_face_size filter and the centre-crop fallback are FacePipeline's own: the cached
detections are replayed through it by a ReplayDetector. Embeddings are cached too (keyed by image and face).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from model.detection import DETECTORS, Detector, DetectorOptions, create_detector, detect_faces
from model.embedders import create_embedder
from model.embedders.base import ChipEmbedder, l2_normalise
from model.evaluation import metrics
from model.evaluation.protocols import DatasetError, read_csv
from model.image_io import load_image
from model.pipeline import FacePipeline, PipelineOptions
from model.quality import assess
from model.templates import score_persons
from model.types import Detection, FloatArray, ImageArray
from services.config import Settings

log = logging.getLogger(__name__)

RESOLUTIONS = ("full", "64")
DETECTOR_ORDER = ("mtcnn", "yunet", "retinaface")
UPSCALES = (0, 112, 160, 224, 320)
MIN_SIZES = (12, 20, 32)
TEMPLATE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
KS = (1, 5)
FAR = 1e-3
MODEL = "mobilefacenet"
# ONNX Runtime: 5 ms a face on one thread against PyTorch's 15, with the same vectors (runtime parity, evaluate.py).
RUNTIME = "onnx"
# Configurations whose dev accuracy is within this of the best count as equally accurate (2 of the 1,000 pairs);
# among them the fastest wins. Closer differences are noise, not a reason to pay for a slower setting.
DEFAULT_TOLERANCE = 0.002
TIMING_IMAGES = 200
DLIB_FOLDS = 2
CHUNK = 64
SAVE_EVERY = 500
# The product's detector options now: the full-resolution runs use them.
DEFAULTS = DetectorOptions()
PRODUCT_SCORE = DEFAULTS.score_threshold


@dataclass(frozen=True, slots=True)
class Setting:
    """One detection setting: detector, enlargement of small images, smallest face kept (in image pixels)."""

    detector: str
    upscale_below: int
    min_face_size: int

    @property
    def label(self) -> str:
        return f"{self.detector} up{self.upscale_below} min{self.min_face_size}"


# Today's pipeline, the baseline of issue 13: MTCNN with the detector options of before it (enlarged below 224 px,
# faces of 20 px or more), the best face per person (w=0), flip off. Fixed: the defaults move with what this measures.
BASELINE = Setting("mtcnn", 224, 20)


# --- replaying cached detections through FacePipeline ---


def image_digest(image: ImageArray) -> str:
    return hashlib.blake2b(image.tobytes() + str(image.shape).encode(), digest_size=16).hexdigest()


class ReplayDetector:
    """A Detector that answers with detections recorded earlier for the same pixels.

    Recorded detections are in the image's own coordinates, so the pipeline replaying them must not rescale
    (`replay_options`); everything after detection (score threshold, size filter, primary choice, centre crop)
    is then FacePipeline's own code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._by_digest: dict[str, list[Detection]] = {}

    def remember(self, image: ImageArray, detections: Sequence[Detection]) -> None:
        self._by_digest[image_digest(image)] = list(detections)

    def detect(self, image: ImageArray) -> list[Detection]:
        try:
            return self._by_digest.pop(image_digest(image))
        except KeyError:
            raise LookupError("no detections were recorded for this image") from None


def replay_options(min_face_size: int, score_threshold: float = PRODUCT_SCORE) -> PipelineOptions:
    """The pipeline's options for replaying: the product's filters, no rescaling, a centre crop when no face."""
    detector = DetectorOptions(min_face_size=min_face_size, score_threshold=score_threshold, upscale_below=0)
    return PipelineOptions(detector=detector, no_face="center_crop")


def detection_options(upscale_below: int) -> DetectorOptions:
    """What the cache records: every detection the detector returns (no score threshold) after enlargement."""
    return replace(DEFAULTS, upscale_below=upscale_below, score_threshold=0.0)


# --- the detection cache ---


def pack_detections(found: Mapping[str, Sequence[Detection]], ms: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Detections per image as flat arrays (an image's detections are `counts[i]` consecutive rows)."""
    paths = list(found)
    flat = [d for p in paths for d in found[p]]
    return {
        "paths": np.asarray(paths, dtype=str),
        "counts": np.asarray([len(found[p]) for p in paths], dtype=np.int32),
        "ms": np.asarray([ms.get(p, np.nan) for p in paths], dtype=np.float32),
        "boxes": np.asarray([d.box for d in flat], dtype=np.float32).reshape(-1, 4),
        "landmarks": np.asarray([d.landmarks for d in flat], dtype=np.float32).reshape(-1, 5, 2),
        "scores": np.asarray([d.score for d in flat], dtype=np.float32),
    }


def unpack_detections(arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, list[Detection]], dict[str, float]]:
    found: dict[str, list[Detection]] = {}
    ms: dict[str, float] = {}
    row = 0
    for path, count, t in zip(arrays["paths"], arrays["counts"], arrays["ms"], strict=True):
        found[str(path)] = [
            Detection(box=arrays["boxes"][i], landmarks=arrays["landmarks"][i], score=float(arrays["scores"][i]))
            for i in range(row, row + int(count))
        ]
        ms[str(path)] = float(t)
        row += int(count)
    return found, ms


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Written whole or not at all: a stopped run keeps the previous cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def detection_cache_file(cache_dir: Path, resolution: str, detector: str, options: DetectorOptions) -> Path:
    return cache_dir / (
        f"det-{resolution}-{detector}-up{options.upscale_below}-px{options.max_pixels}-thr{options.score_threshold:g}.npz"
    )


# --- embeddings of chosen faces, both flip contracts from one pair of forward passes ---


def face_key(path: str, detection: Detection) -> str:
    """The identity of a chip: the image and the face cut from it (a centre crop included)."""
    h = hashlib.blake2b(path.encode(), digest_size=16)
    h.update(np.ascontiguousarray(detection.box, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(detection.landmarks, dtype=np.float32).tobytes())
    h.update(b"F" if detection.fallback else b"D")
    return h.hexdigest()


def embed_flip_pair(embedder: ChipEmbedder, chips: Sequence[ImageArray]) -> tuple[FloatArray, FloatArray]:
    """(flip off, flip on) vectors of the chips, as ChipEmbedder.embed computes each contract, from two forward
    passes instead of three (the flip-on contract sums the raw embeddings of the chip and its mirror image)."""
    if not chips:
        empty = np.zeros((0, embedder.spec.dim), dtype=np.float32)
        return empty, empty
    plain, mirrored = [], []
    for start in range(0, len(chips), embedder.batch_size):
        batch = np.stack(chips[start : start + embedder.batch_size])
        plain.append(embedder._forward(batch))
        mirrored.append(embedder._forward(np.ascontiguousarray(batch[:, :, ::-1])))
    raw = np.concatenate(plain).astype(np.float32)
    return l2_normalise(raw), l2_normalise(raw + np.concatenate(mirrored).astype(np.float32))


@dataclass(slots=True)
class VectorStore:
    """Face vectors by face key: flip off, flip on (when computed) and the face's quality score."""

    dim: int
    off: dict[str, FloatArray] = field(default_factory=dict)
    on: dict[str, FloatArray] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)

    def missing(self, key: str, need_on: bool) -> bool:
        return key not in self.off or (need_on and key not in self.on)

    def to_arrays(self) -> dict[str, np.ndarray]:
        keys = list(self.off)
        nan = np.full(self.dim, np.nan, dtype=np.float32)
        return {
            "keys": np.asarray(keys, dtype=str),
            "off": np.asarray([self.off[k] for k in keys], dtype=np.float32).reshape(-1, self.dim),
            "on": np.asarray([self.on.get(k, nan) for k in keys], dtype=np.float32).reshape(-1, self.dim),
            "quality": np.asarray([self.quality[k] for k in keys], dtype=np.float32),
        }

    @classmethod
    def from_arrays(cls, dim: int, arrays: Mapping[str, np.ndarray]) -> VectorStore:
        store = cls(dim)
        for i, key in enumerate(arrays.get("keys", [])):
            k = str(key)
            store.off[k] = arrays["off"][i]
            store.quality[k] = float(arrays["quality"][i])
            if not np.isnan(arrays["on"][i]).any():
                store.on[k] = arrays["on"][i]
        return store


@dataclass(frozen=True, slots=True)
class Primary:
    """The face the pipeline chose for an image, by key, and whether it is a centre crop."""

    key: str
    fallback: bool


# --- metrics (pure) ---


def pair_scores(vectors: Mapping[str, FloatArray], rows: Sequence[Mapping[str, str]]) -> np.ndarray:
    return np.asarray([float(vectors[r["path_a"]] @ vectors[r["path_b"]]) for r in rows], dtype=np.float64)


def pair_labels(rows: Sequence[Mapping[str, str]]) -> np.ndarray:
    return np.asarray([r["same"].strip().lower() in ("1", "true", "yes", "same") for r in rows])


def verification(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict[str, float | None]:
    """k-fold accuracy (threshold from the other folds), ROC AUC and TAR at FAR (None if too few impostors)."""
    kfold = metrics.kfold_accuracy(scores, labels, folds)
    try:
        tar: float | None = metrics.tar_at_far(scores, labels, FAR)[0]
    except metrics.MetricError:
        tar = None
    return {
        "accuracy": round(kfold.mean, 4),
        "accuracy_std": round(kfold.std, 4),
        "auc": round(metrics.roc_auc(scores, labels), 5),
        "tar_at_far": None if tar is None else round(tar, 4),
    }


def identification(
    gallery: FloatArray,
    gallery_ids: Sequence[str],
    qualities: Sequence[float],
    probes: FloatArray,
    truth: Sequence[str],
    weights: Sequence[float] = TEMPLATE_WEIGHTS,
    ks: Sequence[int] = KS,
) -> dict[str, dict[str, float]]:
    """Closed-set Top-K per template weight w (score_persons: w on the template, 1 - w on the best face)."""
    out: dict[str, dict[str, float]] = {}
    for w in weights:
        order, scores = score_persons(probes, gallery, gallery_ids, qualities, w)
        ranked_idx = np.argsort(-scores, axis=1, kind="stable")[:, : max(ks)]
        ranked = [[order[j] for j in row] for row in ranked_idx]
        topk = metrics.top_k_accuracy(ranked, truth, ks)
        out[f"{w:g}"] = {f"top{k}": round(v, 4) for k, v in topk.items()}
    return out


@dataclass(frozen=True, slots=True)
class GridRow:
    """One small-face setting on the dev pairs."""

    detector: str
    upscale_below: int
    min_face_size: int
    images: int
    fallbacks: int
    ms_per_image: float
    accuracy: float
    threshold: float

    @property
    def detection_rate(self) -> float:
        return 1.0 - self.fallbacks / self.images

    @property
    def setting(self) -> Setting:
        return Setting(self.detector, self.upscale_below, self.min_face_size)


def choose(rows: Sequence[GridRow], tolerance: float) -> GridRow:
    """Accuracy first: every row within `tolerance` of the best dev accuracy counts as best; of those the
    fastest, then the most accurate, the higher detection rate, the minimum face size nearest the default."""
    if not rows:
        raise ValueError("nothing to choose from")
    best = max(r.accuracy for r in rows)
    tied = [r for r in rows if r.accuracy >= best - tolerance - 1e-12]
    return min(
        tied,
        key=lambda r: (r.ms_per_image, -r.accuracy, -r.detection_rate, abs(r.min_face_size - DEFAULTS.min_face_size)),
    )


def first_folds(rows: Sequence[Mapping[str, str]], k: int) -> list[Mapping[str, str]]:
    """The pairs of the k lowest fold ids (cross-validated among themselves, as `evaluate.py --folds k`)."""
    wanted = sorted({int(r["fold"]) for r in rows})[:k]
    return [r for r in rows if int(r["fold"]) in wanted]


def best_of(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The (configuration, flip, w) with the highest Top-1; then Top-5, then View 2 accuracy."""
    candidates = []
    for c in configs:
        for flip in ("off", "on"):
            for w, topk in c["gallery"][flip].items():
                key = (topk["top1"], topk["top5"], c["view2"][flip]["accuracy"])
                candidates.append((key, c, flip, w))
    if not candidates:
        raise ValueError("no configuration to choose from")
    _, c, flip, w = max(candidates, key=lambda t: t[0])
    return summary_of(c, flip, w)


def summary_of(config: Mapping[str, Any], flip: str, w: str) -> dict[str, Any]:
    return {
        "setting": config["setting"],
        "flip": flip,
        "w": w,
        "detection_rate": config["detection_rate"],
        "view2_accuracy": config["view2"][flip]["accuracy"],
        "top1": config["gallery"][flip][w]["top1"],
        "top5": config["gallery"][flip][w]["top5"],
    }


# --- the run ---


def environment() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "opencv_threads": cv2.getNumThreads(),
        "python": platform.python_version(),
        "model": MODEL,
        "runtime": RUNTIME,
        "load_1min_at_start": round(os.getloadavg()[0], 2),
    }


class QualityBench:
    """The state of one run: roots, caches, loaded models."""

    def __init__(self, settings: Settings, detectors: Sequence[str], tolerance: float) -> None:
        if settings.datasets is None or not (settings.datasets / "lfw" / "images").is_dir():
            raise DatasetError("benchmark quality needs LFW under FACEREG_DATASETS/lfw")
        lfw = settings.datasets / "lfw"
        low = settings.data_dir / "datasets" / "lfw-64"
        if not (low / "variant.json").is_file():
            raise DatasetError(f"{low} is missing: run `python scripts/make_lowres_lfw.py` first")
        self.settings = settings
        self.roots = {"full": lfw, "64": low}
        self.cache_dir = settings.data_dir / "cache" / "quality"
        self.detector_names = list(detectors)
        self.tolerance = tolerance
        self.view2 = read_csv(lfw / "verify_pairs_folds.csv", ("path_a", "path_b", "same", "fold"))
        self.dev = read_csv(lfw / "verify_pairs_devtest.csv", ("path_a", "path_b", "same"))
        self.split = read_csv(lfw / "gallery_split.csv", ("path", "identity", "role"))
        pair_paths = (p for r in self.view2 for p in (r["path_a"], r["path_b"]))
        self.images = list(dict.fromkeys([*pair_paths, *(r["path"] for r in self.split)]))
        self.dev_images = list(dict.fromkeys(p for r in self.dev for p in (r["path_a"], r["path_b"])))
        self._detectors: dict[str, Detector] = {}
        self._embedders: dict[tuple[str, bool], ChipEmbedder] = {}
        self._stores: dict[tuple[str, str], VectorStore] = {}
        self.flip_checks: dict[str, float] = {}
        self.stages: dict[str, dict[str, float]] = {}

    # models

    def detector(self, name: str) -> Detector:
        if name not in self._detectors:
            self._detectors[name] = create_detector(name, self.settings.model_dir, "cpu")
        return self._detectors[name]

    def embedder(self, model: str, flip: bool = False) -> ChipEmbedder:
        if (model, flip) not in self._embedders:
            runtime = "dlib" if model == "dlib" else RUNTIME
            emb = create_embedder(model, runtime, self.settings.model_dir, "cpu", flip=flip)
            assert isinstance(emb, ChipEmbedder)
            self._embedders[(model, flip)] = emb
        return self._embedders[(model, flip)]

    def store(self, resolution: str, model: str) -> VectorStore:
        if (resolution, model) not in self._stores:
            dim = self.embedder(model).spec.dim
            self._stores[(resolution, model)] = VectorStore.from_arrays(
                dim, load_npz(self._store_file(resolution, model))
            )
        return self._stores[(resolution, model)]

    def save_store(self, resolution: str, model: str) -> None:
        save_npz(self._store_file(resolution, model), self.store(resolution, model).to_arrays())

    def _store_file(self, resolution: str, model: str) -> Path:
        runtime = "dlib" if model == "dlib" else RUNTIME
        return self.cache_dir / f"vec-{resolution}-{model}-{runtime}.npz"

    # stage bookkeeping

    def timed_stage(self, name: str, started: tuple[float, float]) -> None:
        wall, cpu = started
        self.stages[name] = {
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(time.process_time() - cpu, 1),
        }
        log.info("stage %s: %s", name, self.stages[name])

    # 1. timing

    def timing(self, n_images: int) -> list[dict[str, Any]]:
        """CPU and wall ms per image for every detector setting measured, on the same `n_images` photos."""
        sample = self.images[:: max(1, len(self.images) // n_images)][:n_images]
        rows = []
        for resolution in RESOLUTIONS:
            images = [load_image(self.roots[resolution] / p) for p in sample]
            upscales = UPSCALES if resolution == "64" else (DEFAULTS.upscale_below,)
            for name in self.detector_names:
                for upscale in upscales:
                    rows.append(self._time_one(resolution, name, upscale, images))
            if resolution == "64" and BASELINE.detector not in self.detector_names:
                rows.append(self._time_one(resolution, BASELINE.detector, BASELINE.upscale_below, images))
        return rows

    def _time_one(self, resolution: str, name: str, upscale: int, images: list[ImageArray]) -> dict[str, Any]:
        detector, options = self.detector(name), replace(DEFAULTS, upscale_below=upscale)
        for image in images[:3]:
            detect_faces(detector, image, options)
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        for image in images:
            detect_faces(detector, image, options)
        row = {
            "resolution": resolution,
            "detector": name,
            "upscale_below": upscale,
            "images": len(images),
            "cpu_ms": round((time.process_time() - cpu) * 1000 / len(images), 2),
            "wall_ms": round((time.perf_counter() - wall) * 1000 / len(images), 2),
            "load_1min": round(load, 2),
        }
        log.info("timing %s", row)
        return row

    # 2. detection, cached

    def detections(self, resolution: str, name: str, upscale: int, paths: Sequence[str]) -> dict[str, list[Detection]]:
        options = detection_options(upscale)
        path = detection_cache_file(self.cache_dir, resolution, name, options)
        found, ms = unpack_detections(load_npz(path)) if path.is_file() else ({}, {})
        missing = [p for p in dict.fromkeys(paths) if p not in found]
        if missing:
            detector, root = self.detector(name), self.roots[resolution]
            for i, rel in enumerate(tqdm(missing, desc=f"detect {resolution} {name} up{upscale}", unit="img")):
                image = load_image(root / rel)
                cpu = time.process_time()
                found[rel] = detect_faces(detector, image, options)
                ms[rel] = (time.process_time() - cpu) * 1000
                if (i + 1) % SAVE_EVERY == 0:
                    save_npz(path, pack_detections(found, ms))
            save_npz(path, pack_detections(found, ms))
        return {p: found[p] for p in paths}

    # 3./4. primary faces and their vectors

    def primaries(
        self, resolution: str, setting: Setting, paths: Sequence[str], model: str, need_on: bool
    ) -> dict[str, Primary]:
        """Each image's primary face as FacePipeline chooses it from the cached detections, embedded (cached)."""
        unique = list(dict.fromkeys(paths))
        found = self.detections(resolution, setting.detector, setting.upscale_below, unique)
        replay = ReplayDetector(setting.detector)
        embedder = self.embedder(model)
        pipeline = FacePipeline(replay, embedder, replay_options(setting.min_face_size))
        store, root = self.store(resolution, model), self.roots[resolution]
        chosen: dict[str, Primary] = {}
        embedded = 0
        desc = f"embed {resolution} {setting.label} {model}{' +flip' if need_on else ''}"
        with tqdm(total=len(unique), desc=desc, unit="img") as bar:
            for start in range(0, len(unique), CHUNK):
                batch: list[tuple[str, ImageArray, Detection]] = []
                queued: set[str] = set()
                for rel in unique[start : start + CHUNK]:
                    image = pipeline.load(root / rel)
                    replay.remember(image, found[rel])
                    face = pipeline.primary(image)
                    key = face_key(rel, face)
                    chosen[rel] = Primary(key, face.fallback)
                    if store.missing(key, need_on) and key not in queued:
                        queued.add(key)
                        batch.append((key, image, face))
                self._embed(model, store, batch, need_on)
                embedded += len(batch)
                bar.update(len(unique[start : start + CHUNK]))
        if embedded:
            self.save_store(resolution, model)
        return chosen

    def _embed(
        self, model: str, store: VectorStore, batch: Sequence[tuple[str, ImageArray, Detection]], need_on: bool
    ) -> None:
        if not batch:
            return
        embedder = self.embedder(model)
        chips = [embedder.align(image, face) for _, image, face in batch]
        if need_on:
            off, on = embed_flip_pair(embedder, chips)
            self._check_flip(model, chips, off, on)
        else:
            off, on = embedder.embed(chips), None
        for i, (key, _, face) in enumerate(batch):
            store.off[key] = off[i]
            store.quality[key] = assess(face, chips[i]).score
            if on is not None:
                store.on[key] = on[i]

    def _check_flip(self, model: str, chips: Sequence[ImageArray], off: FloatArray, on: FloatArray) -> None:
        """Once per model: the shortcut's vectors are those of the flip-off and flip-on embedders themselves."""
        if model in self.flip_checks:
            return
        n = min(len(chips), 16)
        diff = max(
            float(np.abs(self.embedder(model, False).embed(chips[:n]) - off[:n]).max()),
            float(np.abs(self.embedder(model, True).embed(chips[:n]) - on[:n]).max()),
        )
        if diff > 1e-4:
            raise RuntimeError(f"{model}: flip vectors differ from the embedder's own by {diff:g}")
        self.flip_checks[model] = diff

    def vectors(self, resolution: str, model: str, chosen: Mapping[str, Primary], flip: str) -> dict[str, FloatArray]:
        table = self.store(resolution, model).on if flip == "on" else self.store(resolution, model).off
        return {p: table[c.key] for p, c in chosen.items()}

    # 3. the small-face grid

    def grid(self, timing: Sequence[Mapping[str, Any]]) -> list[GridRow]:
        ms = {(t["detector"], t["upscale_below"]): t["cpu_ms"] for t in timing if t["resolution"] == "64"}
        labels = pair_labels(self.dev)
        rows = []
        for name in self.detector_names:
            for upscale in UPSCALES:
                for size in MIN_SIZES:
                    setting = Setting(name, upscale, size)
                    chosen = self.primaries("64", setting, self.dev_images, MODEL, need_on=False)
                    scores = pair_scores(self.vectors("64", MODEL, chosen, "off"), self.dev)
                    accuracy, threshold = metrics.best_accuracy_threshold(scores, labels)
                    row = GridRow(
                        name,
                        upscale,
                        size,
                        len(chosen),
                        sum(c.fallback for c in chosen.values()),
                        float(ms.get((name, upscale), np.nan)),
                        round(accuracy, 4),
                        round(threshold, 4),
                    )
                    log.info("grid %s", row)
                    rows.append(row)
        return rows

    # 4. per resolution and detector

    def evaluate(self, resolution: str, setting: Setting, roles: list[str]) -> dict[str, Any]:
        chosen = self.primaries(resolution, setting, self.images, MODEL, need_on=True)
        labels, folds = pair_labels(self.view2), np.asarray([int(r["fold"]) for r in self.view2])
        enroll = [r for r in self.split if r["role"] == "enroll"]
        probes = [r for r in self.split if r["role"] == "probe"]
        store = self.store(resolution, MODEL)
        qualities = [store.quality[chosen[r["path"]].key] for r in enroll]
        view2, gallery = {}, {}
        for flip in ("off", "on"):
            vec = self.vectors(resolution, MODEL, chosen, flip)
            view2[flip] = verification(pair_scores(vec, self.view2), labels, folds)
            gallery[flip] = identification(
                np.stack([vec[r["path"]] for r in enroll]),
                [r["identity"] for r in enroll],
                qualities,
                np.stack([vec[r["path"]] for r in probes]),
                [r["identity"] for r in probes],
            )
        fallbacks = sum(c.fallback for c in chosen.values())
        result = {
            "resolution": resolution,
            "setting": asdict(setting),
            "roles": roles,
            "images": len(chosen),
            "fallbacks": fallbacks,
            "detection_rate": round(1.0 - fallbacks / len(chosen), 4),
            "view2": view2,
            "gallery": gallery,
        }
        log.info("config %s %s: %s", resolution, setting.label, {k: result[k] for k in ("detection_rate", "view2")})
        return result

    # 5. dlib

    def dlib(self, resolution: str, setting: Setting, folds: int) -> dict[str, Any]:
        rows = first_folds(self.view2, folds)
        paths = [p for r in rows for p in (r["path_a"], r["path_b"])]
        labels, fold_ids = pair_labels(rows), np.asarray([int(r["fold"]) for r in rows])
        out: dict[str, Any] = {"resolution": resolution, "setting": asdict(setting), "pairs": len(rows), "folds": folds}
        for model in ("dlib", MODEL):
            chosen = self.primaries(resolution, setting, paths, model, need_on=True)
            out[model] = {
                flip: verification(pair_scores(self.vectors(resolution, model, chosen, flip), rows), labels, fold_ids)
                for flip in ("off", "on")
            }
        return out


def _stage_clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def settings_to_run(names: Sequence[str], chosen: Mapping[str, GridRow]) -> list[tuple[str, Setting, list[str]]]:
    """(resolution, setting, roles): the defaults at full resolution, each detector's choice on the 64-px variant,
    and today's pipeline there when no detector's choice is it."""
    runs: list[tuple[str, Setting, list[str]]] = [
        ("full", Setting(name, DEFAULTS.upscale_below, DEFAULTS.min_face_size), ["default"]) for name in names
    ]
    low = [("64", chosen[name].setting, ["chosen"]) for name in names]
    for _, setting, roles in low:
        if setting == BASELINE:
            roles.append("baseline")
    if not any("baseline" in roles for _, _, roles in low):
        low.append(("64", BASELINE, ["baseline"]))
    return runs + low


def run_all(
    settings: Settings,
    out: Path,
    tolerance: float = DEFAULT_TOLERANCE,
    timing_images: int = TIMING_IMAGES,
    dlib_folds: int = DLIB_FOLDS,
    detectors: Sequence[str] | None = None,
) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    names = [d for d in (detectors or DETECTOR_ORDER) if d in DETECTORS]
    bench = QualityBench(settings, names, tolerance)
    env = environment()
    started_all = _stage_clock()

    clock = _stage_clock()
    timing = bench.timing(timing_images)
    bench.timed_stage("timing", clock)

    clock = _stage_clock()
    grid = bench.grid(timing)
    chosen = {name: choose([r for r in grid if r.detector == name], tolerance) for name in names}
    overall = choose(grid, tolerance)
    bench.timed_stage("small_face_grid", clock)

    clock = _stage_clock()
    configs = [bench.evaluate(res, setting, roles) for res, setting, roles in settings_to_run(names, chosen)]
    bench.timed_stage("configs", clock)

    clock = _stage_clock()
    dlib = []
    if "mtcnn" in chosen:  # dlib on the faces MTCNN gives at each resolution (its default, its 64-px choice)
        mtcnn = {
            "full": Setting("mtcnn", DEFAULTS.upscale_below, DEFAULTS.min_face_size),
            "64": chosen["mtcnn"].setting,
        }
        dlib = [bench.dlib(res, mtcnn[res], dlib_folds) for res in RESOLUTIONS]
    bench.timed_stage("dlib", clock)
    bench.timed_stage("total", started_all)

    low = [c for c in configs if c["resolution"] == "64"]
    baseline = next(c for c in low if "baseline" in c["roles"])
    report: dict[str, Any] = {
        "environment": env,
        "data": {
            "images": len(bench.images),
            "view2_pairs": len(bench.view2),
            "dev_pairs": len(bench.dev),
            "dev_images": len(bench.dev_images),
            "gallery_enroll": sum(r["role"] == "enroll" for r in bench.split),
            "gallery_probes": sum(r["role"] == "probe" for r in bench.split),
            "roots": {k: str(v) for k, v in bench.roots.items()},
        },
        "grid_values": {"upscale_below": UPSCALES, "min_face_size": MIN_SIZES, "template_weights": TEMPLATE_WEIGHTS},
        "tolerance": tolerance,
        "timing": timing,
        "grid": [{**asdict(r), "detection_rate": round(r.detection_rate, 4)} for r in grid],
        "chosen": {name: asdict(r.setting) for name, r in chosen.items()},
        "chosen_overall": asdict(overall.setting),
        "configs": configs,
        "baseline": summary_of(baseline, "off", "0"),
        "best": best_of(low),
        "dlib": dlib,
        "flip_shortcut_max_diff": bench.flip_checks,
        "skipped": [
            "arcface-r50: no pretrained weights on this machine",
            *(f"{d}: not in model.detection DETECTORS" for d in (detectors or DETECTOR_ORDER) if d not in DETECTORS),
        ],
        "stages": bench.stages,
        "load_1min_at_end": round(os.getloadavg()[0], 2),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "quality.md").write_text(markdown(report))
    return report


# --- the report ---


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _header(cells: Sequence[str]) -> list[str]:
    return [_row(cells), "|" + "---|" * len(cells)]


def _label(setting: Mapping[str, Any]) -> str:
    return f"up {setting['upscale_below']}, min {setting['min_face_size']}"


def _timing_of(report: Mapping[str, Any], resolution: str, setting: Mapping[str, Any]) -> Mapping[str, Any]:
    for t in report["timing"]:
        if (t["resolution"], t["detector"], t["upscale_below"]) == (
            resolution,
            setting["detector"],
            setting["upscale_below"],
        ):
            return dict(t)
    return {"cpu_ms": "", "wall_ms": ""}


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def markdown(report: Mapping[str, Any]) -> str:
    env, data = report["environment"], report["data"]
    lines = [
        "# benchmark quality",
        "",
        f"LFW at full resolution (250x250) and its 64-px variant (central 150x150 downscaled, faces ~45 px); "
        f"{data['images']} images (View 2 pairs + gallery split). {env['model']} ({env['runtime']}), "
        f"{env['torch_threads']} torch / {env['opencv_threads']} OpenCV thread; {env['cpu']}, "
        f"{env['cpu_count']} cores shared with other processes (load {env['load_1min_at_start']} at start). "
        "ms per image: detection alone (enlargement included), measured on "
        f"{report['timing'][0]['images'] if report['timing'] else 0} images per setting before anything else ran; "
        "CPU ms is this process's CPU time (one thread, robust to other load), wall ms includes waiting.",
        "",
        "Percentages: accuracy, Top-K and rates in %. A centre-crop fallback is an image where no face passed "
        "the score threshold (0.7) and min_face_size; it is embedded as the central square.",
        "",
        "## Detection (all images; full: defaults, 64 px: each detector's chosen setting, and today's pipeline)",
        "",
        *_header(
            ["resolution", "detector", "setting", "detected / images", "rate %", "fallbacks", "CPU ms", "wall ms"]
        ),
    ]
    for c in report["configs"]:
        t = _timing_of(report, c["resolution"], c["setting"])
        detected = c["images"] - c["fallbacks"]
        lines.append(
            _row(
                [
                    c["resolution"],
                    c["setting"]["detector"],
                    _label(c["setting"]) + ("" if c["roles"] == ["default"] else f" ({', '.join(c['roles'])})"),
                    f"{detected} / {c['images']}",
                    _pct(c["detection_rate"]),
                    c["fallbacks"],
                    t["cpu_ms"],
                    t["wall_ms"],
                ]
            )
        )
    lines += [
        "",
        f"## Small faces: the grid on the 64-px DEV pairs ({data['dev_pairs']} pairs, {data['dev_images']} images)",
        "",
        f"Dev accuracy at the best threshold on these pairs, flip off, {env['model']}. Choice: the fastest setting "
        f"within {100 * report['tolerance']:.1f} points of the best dev accuracy (closer is noise on "
        f"{data['dev_pairs']} pairs). "
        f"Chosen overall: {report['chosen_overall']['detector']} {_label(report['chosen_overall'])}.",
        "",
        *_header(["detector", "upscale_below", "min_face", "detection rate %", "fallbacks", "CPU ms", "dev acc %", ""]),
    ]
    for g in report["grid"]:
        mark = []
        if report["chosen"].get(g["detector"]) == {k: g[k] for k in ("detector", "upscale_below", "min_face_size")}:
            mark.append("chosen")
        if {k: g[k] for k in ("detector", "upscale_below", "min_face_size")} == report["baseline"]["setting"]:
            mark.append("today")
        lines.append(
            _row(
                [
                    g["detector"],
                    g["upscale_below"] or "off",
                    g["min_face_size"],
                    _pct(g["detection_rate"]),
                    g["fallbacks"],
                    g["ms_per_image"],
                    _pct(g["accuracy"]),
                    ", ".join(mark),
                ]
            )
        )
    lines += [
        "",
        f"## View 2 ({data['view2_pairs']} pairs, 10 folds)",
        "",
        *_header(["resolution", "detector", "setting", "flip", "accuracy % (std)", "AUC", f"TAR@FAR={FAR:g} %"]),
    ]
    for c in report["configs"]:
        for flip in ("off", "on"):
            v = c["view2"][flip]
            lines.append(
                _row(
                    [
                        c["resolution"],
                        c["setting"]["detector"],
                        _label(c["setting"]),
                        flip,
                        f"{_pct(v['accuracy'])} ({_pct(v['accuracy_std'])})",
                        v["auc"],
                        _pct(v["tar_at_far"]),
                    ]
                )
            )
    weights = [f"{w:g}" for w in report["grid_values"]["template_weights"]]
    for k in KS:
        lines += [
            "",
            f"## Gallery split Top-{k} by template weight w ({data['gallery_enroll']} enrolled faces, "
            f"{data['gallery_probes']} probes; w=0 is the best face alone, today's scoring)",
            "",
            *_header(["resolution", "detector", "setting", "flip", *(f"w={w}" for w in weights)]),
        ]
        for c in report["configs"]:
            for flip in ("off", "on"):
                g = c["gallery"][flip]
                cells = [c["resolution"], c["setting"]["detector"], _label(c["setting"]), flip]
                lines.append(_row(cells + [_pct(g[w][f"top{k}"]) for w in weights]))
    base, best = report["baseline"], report["best"]
    lines += [
        "",
        "## 64 px: today's pipeline and the best configuration measured",
        "",
        *_header(["", "detector", "setting", "flip", "w", "detection rate %", "View 2 acc %", "Top-1 %", "Top-5 %"]),
    ]
    for name, s in (("today (baseline)", base), ("best", best)):
        lines.append(
            _row(
                [
                    name,
                    s["setting"]["detector"],
                    _label(s["setting"]),
                    s["flip"],
                    s["w"],
                    _pct(s["detection_rate"]),
                    _pct(s["view2_accuracy"]),
                    _pct(s["top1"]),
                    _pct(s["top5"]),
                ]
            )
        )
    lines.append(
        f"\nTop-1 gain: {100 * (best['top1'] - base['top1']):+.2f} points; "
        f"View 2: {100 * (best['view2_accuracy'] - base['view2_accuracy']):+.2f} points."
    )
    if report["dlib"]:
        d0 = report["dlib"][0]
        lines += [
            "",
            f"## dlib (its own alignment) on MTCNN's faces, flip off/on: the first {d0['folds']} folds of View 2 "
            f"({d0['pairs']} pairs, cross-validated between them); {env['model']} on the same pairs for reference",
            "",
            *_header(["resolution", "setting", "model", "flip", "accuracy % (std)", "AUC", f"TAR@FAR={FAR:g} %"]),
        ]
        for d in report["dlib"]:
            for model in ("dlib", env["model"]):
                for flip in ("off", "on"):
                    v = d[model][flip]
                    lines.append(
                        _row(
                            [
                                d["resolution"],
                                _label(d["setting"]),
                                model,
                                flip,
                                f"{_pct(v['accuracy'])} ({_pct(v['accuracy_std'])})",
                                v["auc"],
                                _pct(v["tar_at_far"]),
                            ]
                        )
                    )
    lines += ["", "Skipped: " + "; ".join(report["skipped"]) + "."]
    stages = ", ".join(f"{k} {v['cpu_s']:.0f} s CPU / {v['wall_s']:.0f} s wall" for k, v in report["stages"].items())
    lines += ["", f"Stages: {stages}. Load at the end: {report['load_1min_at_end']}."]
    return "\n".join(lines) + "\n"

"""scripts/bench_quality.py's logic on tiny synthetic inputs: the detection cache, replaying detections through
FacePipeline, both flip contracts from one pair of passes, the metrics, the small-face choice and the report."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.embedders.base import ChipEmbedder
from model.pipeline import FacePipeline
from model.types import Detection, FloatArray, ImageArray
from model.zoo import EmbeddingContract
from scripts import bench_quality as bq
from tests.unit.fakes import FakeEmbedder, fake_spec


def det(x: float, y: float, side: float, score: float = 0.99) -> Detection:
    box = np.array([x, y, x + side, y + side], dtype=np.float32)
    marks = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], dtype=np.float32)
    return Detection(box=box, landmarks=(marks * side + [x, y]).astype(np.float32), score=score)


def image(seed: int, side: int = 64) -> ImageArray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def replay_pipeline(min_face: int) -> tuple[bq.ReplayDetector, FacePipeline]:
    replay = bq.ReplayDetector("mtcnn")
    return replay, FacePipeline(replay, FakeEmbedder(), bq.replay_options(min_face))


# --- the detection cache ---


def test_detections_survive_packing_and_a_file(tmp_path: Path) -> None:
    found = {"a.jpg": [det(1, 2, 30, 0.9), det(20, 5, 12, 0.4)], "none.jpg": [], "b.jpg": [det(0, 0, 50)]}
    path = tmp_path / "cache" / "det.npz"
    bq.save_npz(path, bq.pack_detections(found, {"a.jpg": 3.5, "b.jpg": 1.0}))
    back, ms = bq.unpack_detections(bq.load_npz(path))
    assert list(back) == ["a.jpg", "none.jpg", "b.jpg"]
    assert back["none.jpg"] == []
    for name, faces in found.items():
        for original, restored in zip(faces, back[name], strict=True):
            np.testing.assert_array_equal(original.box, restored.box)
            np.testing.assert_array_equal(original.landmarks, restored.landmarks)
            assert restored.score == pytest.approx(original.score)
    assert ms["a.jpg"] == pytest.approx(3.5)
    assert np.isnan(ms["none.jpg"])
    assert not list(path.parent.glob("*.tmp.npz"))


def test_a_missing_cache_file_is_empty(tmp_path: Path) -> None:
    assert bq.load_npz(tmp_path / "nothing.npz") == {}


def test_cache_files_differ_by_resolution_detector_and_options(tmp_path: Path) -> None:
    names = {
        bq.detection_cache_file(tmp_path, res, name, bq.detection_options(up))
        for res in ("full", "64")
        for name in ("mtcnn", "yunet")
        for up in (0, 224)
    }
    assert len(names) == 8
    assert bq.detection_options(112).score_threshold == 0.0  # the cache keeps every detection


# --- replaying through FacePipeline ---


def test_replay_applies_the_pipelines_size_filter_and_primary_choice() -> None:
    img = image(1)
    small, big = det(2, 2, 14), det(10, 10, 40)
    replay, pipeline = replay_pipeline(min_face=20)
    replay.remember(img, [small, big])
    chosen = pipeline.primary(img)
    np.testing.assert_array_equal(chosen.box, big.box)
    assert not chosen.fallback


def test_replay_falls_back_to_the_centre_when_no_face_passes() -> None:
    img = image(2)
    replay, pipeline = replay_pipeline(min_face=32)
    replay.remember(img, [det(5, 5, 20), det(30, 5, 40, score=0.5)])  # too small; too unsure
    chosen = pipeline.primary(img)
    assert chosen.fallback
    np.testing.assert_array_equal(chosen.box, [0, 0, 64, 64])


def test_a_smaller_minimum_keeps_the_small_face() -> None:
    img = image(3)
    replay, pipeline = replay_pipeline(min_face=12)
    replay.remember(img, [det(5, 5, 20)])
    assert not pipeline.primary(img).fallback


def test_replay_answers_by_pixels_and_refuses_an_unknown_image() -> None:
    replay = bq.ReplayDetector("yunet")
    face = det(1, 1, 30)
    replay.remember(image(4), [face])
    assert replay.detect(image(4).copy()) == [face]  # same pixels, another array
    with pytest.raises(LookupError):
        replay.detect(image(5))


# --- embeddings ---


def test_face_keys_name_the_image_and_the_face() -> None:
    face = det(1, 2, 30)
    crop = Detection(face.box, face.landmarks, 0.0, fallback=True)
    keys = {bq.face_key("a.jpg", face), bq.face_key("b.jpg", face), bq.face_key("a.jpg", crop)}
    assert len(keys) == 3
    assert bq.face_key("a.jpg", face) == bq.face_key("a.jpg", det(1, 2, 30))


class LinearEmbedder(ChipEmbedder):
    """A fixed random linear map of the pixels: not mirror-symmetric, so flip changes its vectors."""

    runtime = "linear"
    device = "cpu"

    def __init__(self, flip: bool, side: int = 6, dim: int = 8) -> None:
        spec = fake_spec("linear", dim)
        sha = hashlib.sha256(b"linear").hexdigest()
        super().__init__(spec, EmbeddingContract("linear", dim, sha, spec.preprocessing, flip=flip), batch_size=3)
        self.weights = np.random.default_rng(0).normal(size=(side * side * 3, dim)).astype(np.float32)

    def _forward(self, batch: ImageArray) -> FloatArray:
        return np.asarray(batch.reshape(len(batch), -1).astype(np.float32) @ self.weights, dtype=np.float32)


def test_the_flip_pair_is_what_each_contract_computes() -> None:
    chips = [image(i, side=6) for i in range(7)]  # more than one batch
    off, on = bq.embed_flip_pair(LinearEmbedder(flip=False), chips)
    np.testing.assert_allclose(off, LinearEmbedder(flip=False).embed(chips), atol=1e-6)
    np.testing.assert_allclose(on, LinearEmbedder(flip=True).embed(chips), atol=1e-6)
    assert np.abs(off - on).max() > 1e-3
    empty_off, empty_on = bq.embed_flip_pair(LinearEmbedder(flip=False), [])
    assert empty_off.shape == empty_on.shape == (0, 8)


def test_the_vector_store_keeps_flip_on_only_where_computed() -> None:
    store = bq.VectorStore(dim=2)
    store.off["a"], store.quality["a"] = np.array([1, 0], np.float32), 0.5
    store.off["b"], store.on["b"], store.quality["b"] = np.array([0, 1], np.float32), np.ones(2, np.float32), 0.1
    back = bq.VectorStore.from_arrays(2, store.to_arrays())
    assert set(back.off) == {"a", "b"} and set(back.on) == {"b"}
    assert back.quality["a"] == pytest.approx(0.5)
    assert back.missing("a", need_on=True) and not back.missing("a", need_on=False)
    assert not back.missing("b", need_on=True) and back.missing("c", need_on=False)


# --- metrics ---


def unit(*v: float) -> FloatArray:
    a = np.asarray(v, dtype=np.float32)
    return (a / np.linalg.norm(a)).astype(np.float32)


def test_a_template_can_win_where_the_best_face_loses() -> None:
    # Person A's two photos bracket the probe; B has one photo a little closer than either of A's.
    gallery = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0.85, 0.15, 0.5)])
    probes = np.stack([unit(0.7, 0.7, 0.14)])
    result = bq.identification(gallery, ["A", "A", "B"], [1.0, 1.0, 1.0], probes, ["A"], weights=(0.0, 1.0))
    assert result["0"] == {"top1": 0.0, "top5": 1.0}
    assert result["1"] == {"top1": 1.0, "top5": 1.0}


def test_verification_of_separable_scores() -> None:
    scores = np.r_[np.linspace(0.6, 0.9, 50), np.linspace(-0.2, 0.3, 50)]
    labels = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    folds = np.arange(100) % 10
    result = bq.verification(scores, labels, folds)
    assert result["accuracy"] == 1.0 and result["auc"] == 1.0
    assert result["tar_at_far"] is None  # 50 impostors cannot support a FAR of 1e-3


def test_pair_scores_and_labels() -> None:
    vectors = {"a": unit(1, 0), "b": unit(1, 1), "c": unit(0, 1)}
    rows = [{"path_a": "a", "path_b": "b", "same": "1"}, {"path_a": "a", "path_b": "c", "same": "0"}]
    np.testing.assert_allclose(bq.pair_scores(vectors, rows), [np.sqrt(0.5), 0.0], atol=1e-6)
    assert bq.pair_labels(rows).tolist() == [True, False]


def test_first_folds_keeps_the_lowest_fold_ids() -> None:
    rows = [{"fold": str(f)} for f in (3, 0, 1, 0, 2)]
    assert [r["fold"] for r in bq.first_folds(rows, 2)] == ["0", "1", "0"]


# --- the small-face choice ---


def row(det_name: str, up: int, size: int, ms: float, acc: float, fallbacks: int = 0) -> bq.GridRow:
    return bq.GridRow(det_name, up, size, 100, fallbacks, ms, acc, 0.3)


def test_choice_takes_the_fastest_of_the_equally_accurate() -> None:
    rows = [row("mtcnn", 224, 20, 33.0, 0.950), row("mtcnn", 0, 20, 18.0, 0.949), row("mtcnn", 320, 20, 45.0, 0.93)]
    assert bq.choose(rows, tolerance=0.002).setting == bq.Setting("mtcnn", 0, 20)
    assert bq.choose(rows, tolerance=0.0).setting == bq.Setting("mtcnn", 224, 20)


def test_choice_breaks_ties_by_accuracy_detection_then_the_default_size() -> None:
    same_speed = [
        row("yunet", 160, 12, 2.0, 0.90, 3),
        row("yunet", 160, 32, 2.0, 0.90, 9),
        row("yunet", 160, 20, 2.0, 0.90, 3),
    ]
    assert bq.choose(same_speed, tolerance=0.0).min_face_size == 20
    assert bq.choose([*same_speed, row("yunet", 160, 12, 2.0, 0.901, 5)], 0.002).accuracy == 0.901
    with pytest.raises(ValueError):
        bq.choose([], 0.0)


def test_todays_pipeline_is_added_when_no_choice_is_it() -> None:
    chosen = {"mtcnn": row("mtcnn", 160, 20, 27.0, 0.9), "yunet": row("yunet", 224, 20, 3.0, 0.9)}
    runs = bq.settings_to_run(["mtcnn", "yunet"], chosen)
    default = f"up{bq.DEFAULTS.upscale_below} min{bq.DEFAULTS.min_face_size}"
    assert [(res, s.label, roles) for res, s, roles in runs] == [
        ("full", f"mtcnn {default}", ["default"]),
        ("full", f"yunet {default}", ["default"]),
        ("64", "mtcnn up160 min20", ["chosen"]),
        ("64", "yunet up224 min20", ["chosen"]),
        ("64", "mtcnn up224 min20", ["baseline"]),
    ]
    chosen["mtcnn"] = row("mtcnn", 224, 20, 33.0, 0.9)
    low = [roles for res, _, roles in bq.settings_to_run(["mtcnn", "yunet"], chosen) if res == "64"]
    assert low == [["chosen", "baseline"], ["chosen"]]


# --- the report ---


def config(res: str, name: str, up: int, top1: float, roles: list[str]) -> dict[str, Any]:
    view = {"accuracy": 0.9, "accuracy_std": 0.01, "auc": 0.95, "tar_at_far": None}
    gallery = {f"{w:g}": {"top1": top1 + w / 100, "top5": 0.99} for w in bq.TEMPLATE_WEIGHTS}
    return {
        "resolution": res,
        "setting": {"detector": name, "upscale_below": up, "min_face_size": 20},
        "roles": roles,
        "images": 10,
        "fallbacks": 1,
        "detection_rate": 0.9,
        "view2": {"off": view, "on": view},
        "gallery": {"off": gallery, "on": {**gallery, "0.5": {"top1": top1 + 0.05, "top5": 1.0}}},
    }


def test_the_best_and_the_report() -> None:
    low = [config("64", "mtcnn", 224, 0.80, ["baseline"]), config("64", "yunet", 160, 0.85, ["chosen"])]
    best = bq.best_of(low)
    assert (best["setting"]["detector"], best["flip"], best["w"], best["top1"]) == ("yunet", "on", "0.5", 0.9)
    grid_rows = [
        {**asdict(row("yunet", 160, 20, 2.0, 0.9)), "detection_rate": 1.0},
        {**asdict(row("mtcnn", 224, 20, 33.0, 0.88)), "detection_rate": 1.0},
    ]
    report = {
        "environment": {"model": "mobilefacenet", "runtime": "onnx", "torch_threads": 1, "opencv_threads": 1}
        | {"cpu": "test", "cpu_count": 2, "load_1min_at_start": 0.5},
        "data": {"images": 10, "view2_pairs": 6, "dev_pairs": 4, "dev_images": 8}
        | {"gallery_enroll": 2, "gallery_probes": 3},
        "grid_values": {"template_weights": bq.TEMPLATE_WEIGHTS},
        "tolerance": 0.002,
        "timing": [
            {"resolution": "64", "detector": "yunet", "upscale_below": 160, "images": 5, "cpu_ms": 1.5, "wall_ms": 1.6}
        ],
        "grid": grid_rows,
        "chosen": {"yunet": {"detector": "yunet", "upscale_below": 160, "min_face_size": 20}},
        "chosen_overall": {"detector": "yunet", "upscale_below": 160, "min_face_size": 20},
        "configs": [config("full", "mtcnn", 224, 0.95, ["default"]), *low],
        "baseline": bq.summary_of(low[0], "off", "0"),
        "best": best,
        "dlib": [],
        "skipped": ["arcface-r50: no weights"],
        "stages": {"total": {"cpu_s": 10.0, "wall_s": 12.0}},
        "load_1min_at_end": 1.0,
    }
    text = bq.markdown(report)
    assert "| yunet | 160 | 20 | 100.00 | 0 | 2.0 | 90.00 | chosen |" in text
    assert "| mtcnn | 224 | 20 | 100.00 | 0 | 33.0 | 88.00 | today |" in text
    assert "| today (baseline) | mtcnn | up 224, min 20 | off | 0 |" in text
    assert "Top-1 gain: +10.00 points" in text
    assert "| 64 | yunet | up 160, min 20 (chosen) | 9 / 10 | 90.00 | 1 | 1.5 | 1.6 |" in text

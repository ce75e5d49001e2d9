"""RetinaFace's pure steps: prior boxes, box and landmark decoding, selection, weights loading."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from model.detection import create_detector
from model.detection.factory import RETINAFACE_FILE, RETINAFACE_URL
from model.detection.retinaface import (
    MEAN_BGR,
    RetinaFaceNet,
    decode_boxes,
    decode_landmarks,
    load_network,
    prior_boxes,
    select,
    to_input,
    upstream_state_dict,
)
from model.errors import ModelUnavailable
from services.config import Settings


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny convolutions: a second thread only waits for the other busy processes on the two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _expected_count(height: int, width: int) -> int:
    return sum(2 * math.ceil(height / s) * math.ceil(width / s) for s in (8, 16, 32))


def test_prior_boxes_of_a_250_image() -> None:
    priors = prior_boxes(250, 250)
    assert priors.shape == (2 * (32 * 32 + 16 * 16 + 8 * 8), 4)
    # Level 1 (stride 8): two sizes at each location, then the next column of the first row.
    assert priors[:3].tolist() == [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]]
    assert priors[2 * 32].tolist() == [4, 12, 16, 16]  # the second row
    level2 = 2 * 32 * 32
    assert priors[level2 : level2 + 2].tolist() == [[8, 8, 64, 64], [8, 8, 128, 128]]
    assert priors[-1].tolist() == [7.5 * 32, 7.5 * 32, 512, 512]


def test_prior_boxes_of_a_wide_image_follow_rows_then_columns() -> None:
    priors = prior_boxes(20, 50)  # level 1: 3 rows x 7 columns
    assert len(priors) == _expected_count(20, 50)
    assert priors[2 * 7].tolist() == [4, 12, 16, 16]
    assert priors[2 * 7 - 1].tolist() == [52, 4, 32, 32]


def test_prior_boxes_are_cached_per_size() -> None:
    assert prior_boxes(123, 77) is prior_boxes(123, 77)
    assert prior_boxes(123, 77) is not prior_boxes(77, 123)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (20, 20), (37, 301), (250, 250), (97, 64)])
def test_one_prior_per_network_output(height: int, width: int) -> None:
    with torch.inference_mode():
        loc, conf, landm = RetinaFaceNet().eval()(torch.zeros(1, 3, height, width))
    n = _expected_count(height, width)
    assert len(prior_boxes(height, width)) == n
    assert loc.shape == (1, n, 4) and conf.shape == (1, n, 2) and landm.shape == (1, n, 10)


def test_decode_boxes_by_hand() -> None:
    prior = torch.tensor([[100.0, 50.0, 20.0, 40.0]])
    # dx 0.5 -> cx + 0.5 * 0.1 * 20; dy -1 -> cy - 0.1 * 40; dw ln(2) / 0.2 -> twice the width.
    loc = torch.tensor([[0.5, -1.0, math.log(2.0) / 0.2, 0.0]])
    torch.testing.assert_close(decode_boxes(loc, prior), torch.tensor([[81.0, 26.0, 121.0, 66.0]]))
    torch.testing.assert_close(decode_boxes(torch.zeros(1, 4), prior), torch.tensor([[90.0, 30.0, 110.0, 70.0]]))


def test_decode_landmarks_by_hand() -> None:
    prior = torch.tensor([[100.0, 50.0, 20.0, 40.0]])
    pre = torch.tensor([[1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 2.0, 0.0, 0.0, 0.0]])
    points = decode_landmarks(pre, prior)
    assert points.shape == (1, 5, 2)
    expected = torch.tensor([[102.0, 50.0], [100.0, 54.0], [98.0, 46.0], [104.0, 50.0], [100.0, 50.0]])
    torch.testing.assert_close(points[0], expected)


def _boxes(*rows: tuple[float, float, float, float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_select_thresholds_then_suppresses_overlaps_best_first() -> None:
    boxes = _boxes(
        (0, 0, 10, 10),  # 0.6
        (1, 0, 11, 10),  # 0.9: IoU 0.82 with box 0, so box 0 goes
        (50, 50, 60, 60),  # 0.3: under the confidence
        (6, 0, 16, 10),  # 0.7: IoU 0.33 with box 1, kept at 0.4
        (100, 0, 110, 10),  # 0.95
    )
    scores = torch.tensor([0.6, 0.9, 0.3, 0.7, 0.95])
    assert select(boxes, scores, 0.5, 0.4, 5000, 750).tolist() == [4, 1, 3]
    assert select(boxes, scores, 0.5, 0.3, 5000, 750).tolist() == [4, 1]
    assert select(boxes, scores, 0.5, 0.4, 5000, 2).tolist() == [4, 1]
    # Only the 2 best candidates reach NMS.
    assert select(boxes, scores, 0.5, 0.4, 2, 750).tolist() == [4, 1]
    assert select(boxes, scores, 0.99, 0.4, 5000, 750).tolist() == []


def test_select_of_nothing() -> None:
    assert select(torch.zeros(0, 4), torch.zeros(0), 0.5, 0.4, 5000, 750).tolist() == []


def test_input_is_bgr_minus_the_means_nchw() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[1, 2] = (10, 20, 30)  # RGB
    x = to_input(image, "cpu")
    assert x.shape == (1, 3, 2, 3) and x.dtype == torch.float32
    assert x[0, :, 1, 2].tolist() == [30 - MEAN_BGR[0], 20 - MEAN_BGR[1], 10 - MEAN_BGR[2]]
    assert x[0, :, 0, 0].tolist() == [-m for m in MEAN_BGR]


def test_state_dict_prefix_and_wrapper_are_removed() -> None:
    t = torch.zeros(1)
    assert upstream_state_dict({"module.body.x": t, "fpn.y": t}) == {"body.x": t, "fpn.y": t}
    assert upstream_state_dict({"state_dict": {"module.body.x": t}}) == {"body.x": t}
    with pytest.raises(ModelUnavailable, match="state dict"):
        upstream_state_dict({"body.x": "not a tensor"})
    with pytest.raises(ModelUnavailable, match="state dict"):
        upstream_state_dict([t])


def test_a_data_parallel_checkpoint_loads_with_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = RetinaFaceNet().eval()
    path = tmp_path / "rf.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    loaded = load_network(path)
    x = torch.randn(1, 3, 40, 56)
    with torch.inference_mode():
        for a, b in zip(net(x), loaded(x), strict=True):
            assert torch.equal(a, b)


def test_other_files_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="not found"):
        load_network(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="not a readable"):
        load_network(garbage)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in RetinaFaceNet().state_dict().items() if not k.startswith("ClassHead")}, partial)
    with pytest.raises(ModelUnavailable, match="not a RetinaFace"):
        load_network(partial)


def test_missing_weights_name_the_file_the_dirs_and_the_url(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as info:
        create_detector("retinaface", [tmp_path / "a", tmp_path / "b"])
    message = str(info.value)
    assert RETINAFACE_FILE in message and str(tmp_path / "a") in message and str(tmp_path / "b") in message
    assert RETINAFACE_URL in message


def test_the_factory_finds_the_file_in_its_subdir(tmp_path: Path) -> None:
    (tmp_path / "retinaface").mkdir()
    torch.save(RetinaFaceNet().state_dict(), tmp_path / "retinaface" / RETINAFACE_FILE)
    detector = create_detector("retinaface", [tmp_path])
    assert detector.name == "retinaface"
    # Untrained weights: whatever it finds is well formed and over the confidence.
    faces = detector.detect(np.full((40, 40, 3), 128, dtype=np.uint8))
    assert all(f.box.shape == (4,) and f.landmarks.shape == (5, 2) and f.score > 0.5 for f in faces)


def test_settings_accept_the_detector(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setenv("FACEREG_DETECTOR", "retinaface")
    assert Settings().detector == "retinaface"

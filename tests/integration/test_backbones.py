from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from model.backbones import MobileFaceNet, extract_backbone_state, iresnet50, load_backbone
from model.errors import WeightsMismatch
from model.export import export_onnx, onnx_parity


def _with_bn_statistics(net: torch.nn.Module) -> torch.nn.Module:
    """Random weights with BatchNorm statistics from one batch, as a trained net has (finite outputs)."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        net.train()(torch.randn(8, 3, 112, 112))
    return net.eval()


def arcface_torch_r50_keys() -> dict[str, tuple[int, ...]]:
    """State-dict names and shapes of insightface arcface_torch's iresnet50, written out from its layout."""
    keys: dict[str, tuple[int, ...]] = OrderedDict()

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.{name}"] = (c,)
        keys[f"{prefix}.num_batches_tracked"] = ()

    keys["conv1.weight"] = (64, 3, 3, 3)
    bn("bn1", 64)
    keys["prelu.weight"] = (64,)
    cin = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 14, 3), strict=True), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            bn(f"{p}.bn1", cin)
            keys[f"{p}.conv1.weight"] = (planes, cin, 3, 3)
            bn(f"{p}.bn2", planes)
            keys[f"{p}.prelu.weight"] = (planes,)
            keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn3", planes)
            if b == 0:
                keys[f"{p}.downsample.0.weight"] = (planes, cin, 1, 1)
                bn(f"{p}.downsample.1", planes)
            cin = planes
    bn("bn2", 512)
    keys["fc.weight"] = (512, 512 * 7 * 7)
    keys["fc.bias"] = (512,)
    bn("features", 512)
    return keys


def test_iresnet50_has_exactly_the_arcface_torch_state_dict() -> None:
    ours = {k: tuple(v.shape) for k, v in iresnet50().state_dict().items()}
    assert ours == dict(arcface_torch_r50_keys())


def test_iresnet50_loads_an_arcface_torch_checkpoint_strictly(tmp_path: Path) -> None:
    rng = torch.Generator().manual_seed(0)
    state = {
        k: torch.randn(shape, generator=rng) if shape else torch.tensor(3)
        for k, shape in arcface_torch_r50_keys().items()
    }
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    net = load_backbone(iresnet50(), path)
    assert torch.equal(net.state_dict()["layer3.13.conv2.weight"], state["layer3.13.conv2.weight"])
    assert not net.training


def test_iresnet50_forward_gives_512_d_vectors() -> None:
    net = _with_bn_statistics(iresnet50())
    with torch.inference_mode():
        out = net(torch.randn(3, 3, 112, 112))
    assert out.shape == (3, 512)
    assert torch.isfinite(out).all()


def test_iresnet50_onnx_export_parity(tmp_path: Path) -> None:
    net = _with_bn_statistics(iresnet50())
    path = export_onnx(net, tmp_path / "r50.onnx")
    assert onnx_parity(net, path, n=4) >= 0.9999


def test_mobilefacenet_loads_the_shared_weights_strictly_and_matches_their_onnx(settings) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from model.zoo import get_spec, locate_weights

    spec = get_spec("mobilefacenet")
    net = load_backbone(MobileFaceNet(), locate_weights(spec, "torch", settings.model_dir))
    x = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        ref = net(x).numpy()
    session = ort.InferenceSession(str(locate_weights(spec, "onnx", settings.model_dir)))
    got = np.concatenate([session.run(None, {"input0": x[i : i + 1].numpy()})[0] for i in range(2)])
    assert ref.shape == (2, 128)
    assert np.allclose(ref, got, atol=1e-4)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {
            "model_state": {**{f"backbone.{k}": v for k, v in sd.items()}, "head.weight": torch.zeros(10, 128)}
        },
        lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {"model": sd, "epoch": 3},
    ],
    ids=["model_state-backbone", "state_dict-ddp", "model"],
)
def test_training_checkpoint_layouts_are_unwrapped(wrap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = MobileFaceNet().state_dict()
    path = tmp_path / "ckpt.pt"
    torch.save(wrap(source), path)
    net = load_backbone(MobileFaceNet(), path)
    assert torch.equal(net.state_dict()["conv3.weight"], source["conv3.weight"])


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "mfn.pt"
    torch.save(MobileFaceNet().state_dict(), path)
    with pytest.raises(WeightsMismatch, match="missing"):
        load_backbone(iresnet50(), path)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsMismatch, match="not a readable"):
        load_backbone(MobileFaceNet(), path)


def test_extract_refuses_a_checkpoint_without_tensors() -> None:
    with pytest.raises(WeightsMismatch):
        extract_backbone_state({"epoch": 3})

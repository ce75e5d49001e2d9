"""Loading backbone weights from the checkpoint layouts found in the wild, strictly."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from model.errors import ModelUnavailable, WeightsMismatch

# Keys under which training scripts nest the weights, most specific first.
_NESTING_KEYS = ("model_state", "state_dict", "model", "backbone")
_PREFIXES = ("module.", "backbone.", "model.")


def extract_backbone_state(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """The backbone's own tensors from a plain state dict or a training checkpoint.

    Accepted: `{name: tensor}`; `{"model_state" | "state_dict" | "model": {...}}`;
    keys prefixed with `module.` (DDP) or `backbone.` (a model holding backbone + head, in
    which case the head's keys are dropped).
    """
    state: Mapping[str, object] = checkpoint
    for key in _NESTING_KEYS:
        inner = state.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            state = inner
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsMismatch("the checkpoint holds no tensors under any known key (" + ", ".join(_NESTING_KEYS) + ")")
    if any(k.startswith("backbone.") for k in tensors):
        tensors = {k: v for k, v in tensors.items() if k.startswith("backbone.")}
    return {_strip_prefixes(k): v for k, v in tensors.items()}


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def load_backbone(module: nn.Module, path: Path) -> nn.Module:
    """Load `path` into `module` with strict key and shape matching; eval mode on return."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise ModelUnavailable(f"weights file not found: {path}") from exc
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise WeightsMismatch(f"{path} is not a readable PyTorch checkpoint ({exc})") from exc
    if not isinstance(checkpoint, Mapping):
        raise WeightsMismatch(f"{path} holds a {type(checkpoint).__name__}, not a state dict")
    state = extract_backbone_state(checkpoint)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        raise WeightsMismatch(
            f"{path} does not fit {type(module).__name__}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(wrong_shape)} of another shape (e.g. {wrong_shape[:3]})"
        )
    module.load_state_dict(state, strict=True)
    return module.eval()

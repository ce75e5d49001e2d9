"""Shared fixtures: settings, real LFW faces, and a loaded pipeline per model."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from model.pipeline import FacePipeline
from services.config import Settings
from services.engine import build_pipeline


def _lfw_root() -> Path | None:
    datasets = Settings().datasets
    root = datasets / "lfw" if datasets else None
    return root if root is not None and (root / "images").is_dir() else None


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(torch_threads=2)


@pytest.fixture(scope="session")
def lfw() -> Path:
    """The LFW folder. Missing data skips locally but fails in CI, where ../shared is always present."""
    root = _lfw_root()
    if root is None:
        if os.environ.get("CI"):
            pytest.fail("FACEREG_DATASETS/lfw is missing in CI")
        pytest.skip("LFW not found: set FACEREG_DATASETS to the folder holding lfw/")
    return root


@pytest.fixture(scope="session")
def lfw_image(lfw: Path) -> Callable[[str, int], Path]:
    def path(person: str, n: int = 1) -> Path:
        return lfw / "images" / person / f"{person}_{n:04d}.jpg"

    return path


@pytest.fixture(scope="session")
def mfn(settings: Settings) -> FacePipeline:
    return build_pipeline(settings, model="mobilefacenet", runtime="torch", detector="mtcnn")


@pytest.fixture(scope="session")
def mfn_yunet(settings: Settings) -> FacePipeline:
    return build_pipeline(settings, model="mobilefacenet", runtime="torch", detector="yunet")

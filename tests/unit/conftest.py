"""The unit tier's services: settings in a temporary folder, MongoDB in memory, the exact in-memory index, and
the fake pipeline (tests/unit/fakes.py). No server, no weights, no dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.config import Settings
from services.context import ServiceContext
from services.engine import pipeline_options
from services.storage.image_store import ImageStore
from services.storage.vector_index import MemoryIndex
from tests.unit.fakes import fake_collections, fake_pipeline


def unit_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings that name every policy the services' logic depends on, whatever the environment says."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "mongo_uri": "mongodb://fake.invalid/facereg",
        "gallery": "default",
        "identify_threshold": None,
        "verify_threshold": None,
        "enroll_multi_face": "error",
        "enroll_min_quality": 0.25,
        "attendance_cooldown_s": 300.0,
        "min_face_size": 20,
        "detection_score": 0.7,
        "no_face": "error",
        "timezone": "UTC",
        **overrides,
    }
    return Settings(_env_file=None, **values)


def make_fake_context(settings: Settings, noise: float = 0.2) -> ServiceContext:
    """A ServiceContext on mongomock, a MemoryIndex, images under the data dir and the fake pipeline."""
    pipeline = fake_pipeline(pipeline_options(settings), noise=noise)
    return ServiceContext(
        settings, fake_collections(), MemoryIndex(), ImageStore(settings.data_dir / "images"), pipeline
    )


@pytest.fixture
def fake_context(tmp_path: Path) -> ServiceContext:
    return make_fake_context(unit_settings(tmp_path))

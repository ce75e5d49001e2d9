"""settings_env: the settings a child process is started with read back whole, as the FACEREG_* variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.config import Settings, redact, settings_env, without_settings

# A value other than the default for every field (the test below fails when a new field is missing here).
NON_DEFAULT: dict[str, object] = {
    "model": "mobilefacenet",
    "runtime": "onnx",
    "model_dir": [Path("/opt/weights"), Path("/srv/more weights")],
    "detector": "yunet",
    "device": "cpu",
    "torch_threads": 3,
    "batch_size": 7,
    "flip_tta": True,
    "min_face_size": 41,
    "detection_score": 0.123456789012345,
    "no_face": "center_crop",
    "verify_threshold": -0.3,
    "identify_threshold": 0.1 + 0.2,  # not a short decimal: the text must keep every digit
    "template_weight": 0.7,
    "detect_upscale_below": 300,
    "gallery": "staff",
    "enroll_multi_face": "largest",
    "enroll_min_quality": 0.5,
    "attendance_cooldown_s": 12.5,
    "erase_attendance": "delete",
    "max_image_bytes": 4096,
    "max_image_pixels": 100_000,
    "datasets": Path("/data/sets"),
    "data_dir": Path("/var/lib/facereg"),
    "input_roots": [Path("/in/a"), Path("/in/b")],
    "install_name": "site-2",
    "dashboard_port": 9000,
    "dashboard_users_file": Path("/etc/facereg/users.json"),
    "dashboard_idle_timeout_s": 60.0,
    "timezone": "Asia/Kolkata",
    "mongo_uri": "mongodb://app:s3cret@db.example:27018/site2?authSource=admin",
    "redis_url": "redis://:pw@cache.example:6380/2",
    "chroma_mode": "embedded",
    "chroma_host": "chroma.example",
    "chroma_port": 8123,
    "hnsw_m": 48,
    "hnsw_ef_construction": 400,
    "hnsw_ef_search": 96,
    "chroma_token": SecretStr("t0ken=with/odd+chars"),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No FACEREG_* variable and no .env file (the working directory is empty)."""
    for key in list(os.environ):
        if key.upper().startswith("FACEREG_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def read_back(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_every_field_has_a_non_default_value_here(clean_env: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert set(NON_DEFAULT) == set(Settings.model_fields)
    assert [f for f, v in NON_DEFAULT.items() if getattr(defaults, f) == v] == []


def test_non_default_settings_read_back_equal(clean_env: pytest.MonkeyPatch) -> None:
    original = Settings(**NON_DEFAULT)  # type: ignore[arg-type]
    env = settings_env(original)
    assert env["FACEREG_CHROMA_TOKEN"] == "t0ken=with/odd+chars"  # secrets too: the child needs them
    assert env["FACEREG_MONGO_URI"] == NON_DEFAULT["mongo_uri"]
    assert read_back(env, clean_env) == original


def test_default_settings_read_back_equal(clean_env: pytest.MonkeyPatch) -> None:
    original = Settings()
    assert read_back(settings_env(original), clean_env) == original


def test_an_inherited_variable_never_overrides_a_none(clean_env: pytest.MonkeyPatch) -> None:
    parent = {"FACEREG_CHROMA_TOKEN": "elsewhere", "facereg_verify_threshold": "0.9", "FACEREG_TEST_LOG": "kept"}
    original = Settings(mongo_uri="mongodb://127.0.0.1:1/x")
    assert original.chroma_token is None and original.verify_threshold is None
    child = without_settings({**parent, "PATH": "/bin"}) | settings_env(original)
    assert child["FACEREG_TEST_LOG"] == "kept" and child["PATH"] == "/bin"
    assert "FACEREG_CHROMA_TOKEN" not in child and "facereg_verify_threshold" not in child
    assert read_back(child, clean_env) == original


def test_values_the_environment_cannot_carry_are_errors() -> None:
    with pytest.raises(ValueError, match="FACEREG_INPUT_ROOTS"):
        settings_env(Settings(input_roots=[Path(f"/a{os.pathsep}b")]))
    if Settings().datasets is not None:  # the default is the shared datasets folder: None cannot be said
        with pytest.raises(ValueError, match="FACEREG_DATASETS"):
            settings_env(Settings(datasets=None))


def test_redact_hides_the_password_only() -> None:
    assert redact("mongodb://app:s3cret@db:27017/x") == "mongodb://app:***@db:27017/x"
    assert redact("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"

"""All settings, from the environment (FACEREG_*) or a .env file; never from code edits."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def _default_model_dirs() -> list[Path]:
    dirs = [Path.home() / ".cache" / "facereg" / "models"]
    if (SHARED / "models").is_dir():
        dirs.append(SHARED / "models")
    return dirs


def _default_datasets() -> Path | None:
    return SHARED / "datasets" if (SHARED / "datasets").is_dir() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEREG_", env_file=".env", extra="ignore")

    model: str = "auto"  # arcface-r50 | mobilefacenet | dlib | auto
    runtime: Literal["auto", "torch", "onnx", "dlib"] = "auto"
    model_dir: Annotated[list[Path], NoDecode] = Field(default_factory=_default_model_dirs)
    detector: Literal["mtcnn", "yunet"] = "mtcnn"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int = Field(default=0, ge=0)  # 0: one per core, at most 4
    batch_size: int = Field(default=32, ge=1)
    flip_tta: bool = False
    min_face_size: int = Field(default=20, ge=8)
    detection_score: float = Field(default=0.7, ge=0.0, le=1.0)
    no_face: Literal["error", "center_crop"] = "error"
    verify_threshold: float | None = None  # None: the model's calibrated default
    identify_threshold: float | None = None  # None: the model's calibrated 1:N default
    gallery: str = "default"
    enroll_multi_face: Literal["error", "largest"] = "error"
    enroll_min_quality: float = Field(default=0.25, ge=0.0, le=1.0)
    attendance_cooldown_s: float = Field(default=300.0, ge=0.0)
    erase_attendance: Literal["anonymise", "delete"] = "anonymise"
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    datasets: Path | None = Field(default_factory=_default_datasets)
    data_dir: Path = REPO_ROOT / "data"
    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    dashboard_users_file: Path | None = None  # None: <data_dir>/dashboard_users.json

    @property
    def users_file(self) -> Path:
        return self.dashboard_users_file or self.data_dir / "dashboard_users.json"

    # Infrastructure. Locally: a MongoDB wire-protocol server (SecantusDB), redis-server and an
    # embedded Chroma under data_dir; in docker-compose: the mongo, redis and chroma services.
    mongo_uri: str = "mongodb://127.0.0.1:27017/facereg"
    redis_url: str = "redis://127.0.0.1:6379/0"
    chroma_host: str | None = None  # None: embedded PersistentClient under data_dir/chroma
    chroma_port: int = 8000

    @field_validator("model_dir", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        """FACEREG_MODEL_DIR is a path list like PATH: entries separated by os.pathsep."""
        if isinstance(value, str):
            return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

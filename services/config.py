"""All settings, from the environment (FACEREG_*) or a .env file; never from code edits."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from model.image_io import ImageLimits

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

    model: str = "auto"  # arcface-r50 | mobilefacenet | dlib | auto | custom:<name> (its card in model_dir)
    runtime: Literal["auto", "torch", "onnx", "dlib"] = "auto"
    model_dir: Annotated[list[Path], NoDecode] = Field(default_factory=_default_model_dirs)
    # auto: RetinaFace when its weights are found, else MTCNN. MTCNN stays the default: RetinaFace is more accurate
    # but also finds real background faces, which the one-face enrollment rule refuses (README, Detectors).
    detector: Literal["auto", "mtcnn", "yunet", "retinaface"] = "mtcnn"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int = Field(default=0, ge=0)  # 0: one per core, at most 4
    batch_size: int = Field(default=32, ge=1)
    flip_tta: bool = False
    min_face_size: int = Field(default=20, ge=8)
    # Images whose shorter side is under this are enlarged to it before detection (0: never); see DetectorOptions.
    detect_upscale_below: int = Field(default=160, ge=0, le=4096)
    detection_score: float = Field(default=0.7, ge=0.0, le=1.0, allow_inf_nan=False)
    no_face: Literal["error", "center_crop"] = "error"
    # Cosine thresholds in [-1, 1]; None: the model's calibrated default (1:1 and 1:N).
    verify_threshold: float | None = Field(default=None, ge=-1.0, le=1.0, allow_inf_nan=False)
    identify_threshold: float | None = Field(default=None, ge=-1.0, le=1.0, allow_inf_nan=False)
    # 1:N person score: this share on the person's template, the rest on their best face (model/templates.py).
    # The models' default 1:N thresholds are calibrated at the default; after a change, recalibrate a gallery
    # (`evaluate.py open-set --apply`).
    template_weight: float = Field(default=0.75, ge=0.0, le=1.0, allow_inf_nan=False)
    gallery: str = "default"
    enroll_multi_face: Literal["error", "largest"] = "error"
    enroll_min_quality: float = Field(default=0.25, ge=0.0, le=1.0, allow_inf_nan=False)
    attendance_cooldown_s: float = Field(default=300.0, ge=0.0, le=7 * 24 * 3600.0, allow_inf_nan=False)
    erase_attendance: Literal["anonymise", "delete"] = "anonymise"
    max_image_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=50_000_000, ge=64 * 64)
    datasets: Path | None = Field(default_factory=_default_datasets)
    data_dir: Path = REPO_ROOT / "data"
    # Folders whose files tasks and bulk runs may read (FACEREG_INPUT_ROOTS, separated like PATH). Empty (the
    # default): the data folder and the datasets folder. Paths are checked after resolving symlinks.
    input_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # This install's name: its queue names carry it, so installs sharing a Redis never take each other's tasks.
    # Empty (the default): the MongoDB database name.
    install_name: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9_-]{0,39})?$")

    @property
    def image_limits(self) -> ImageLimits:
        """The decoding limits of every image this install reads (workers, CLIs, the dashboard's pictures)."""
        from model.image_io import ImageLimits  # PIL and numpy: not for every process that reads a setting

        return ImageLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)

    @property
    def allowed_input_roots(self) -> list[Path]:
        roots = self.input_roots or [self.data_dir, *([self.datasets] if self.datasets else [])]
        return [r.expanduser().resolve() for r in roots]

    @property
    def install(self) -> str:
        """The install name: FACEREG_INSTALL_NAME, else the database name of FACEREG_MONGO_URI."""
        if self.install_name:
            return self.install_name
        db = self.mongo_uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] if self.mongo_uri.count("/") >= 3 else ""
        return re.sub(r"[^a-z0-9_-]", "-", db.lower())[:40].strip("-_") or "facereg"

    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    dashboard_users_file: Path | None = None  # None: <data_dir>/dashboard_users.json
    # A dashboard session that shows no activity for this long is signed out.
    dashboard_idle_timeout_s: float = Field(default=8 * 3600.0, gt=0.0)

    @property
    def users_file(self) -> Path:
        return self.dashboard_users_file or self.data_dir / "dashboard_users.json"

    # The site's time zone (FACEREG_TIMEZONE, an IANA name such as "Asia/Kolkata"): attendance days, reports and
    # exports are in it; stored times stay UTC. Empty (the default): this machine's zone (TZ, the /etc/localtime
    # link), else UTC. `tz` is the ZoneInfo.
    timezone: str = Field(default="", validate_default=True)

    @field_validator("timezone")
    @classmethod
    def _resolve_timezone(cls, value: str) -> str:
        if value.strip():
            if cls._zone_name(value.strip(), strict=True) is None:
                raise ValueError(f"{value!r} is not an IANA time zone name (such as 'Europe/Berlin' or 'UTC')")
            return value.strip()
        machine = [os.environ.get("TZ", "")]
        with suppress(OSError):  # not a link, no file, no permission: the next source
            machine.append(str(Path("/etc/localtime").readlink()))
        with suppress(OSError):
            machine.append(Path("/etc/timezone").read_text(errors="replace"))
        return next((n for n in (cls._zone_name(m) for m in machine) if n), "UTC")

    @staticmethod
    def _zone_name(text: str, strict: bool = False) -> str | None:
        """The IANA name in `text` (else in a TZ value like ":Europe/Berlin" or a zoneinfo file path); None if none."""
        name = text.strip()
        if not strict:
            name = name.lstrip(":").rsplit("zoneinfo/", 1)[-1].removeprefix("posix/").removeprefix("right/")
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return None
        return name

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # Infrastructure. Locally: a MongoDB wire-protocol server (SecantusDB), redis-server and a Chroma server
    # (`chroma run`), all started by scripts/local_services.py; in docker-compose: the mongo, redis and chroma
    # services.
    mongo_uri: str = "mongodb://127.0.0.1:27017/facereg"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # server: the Chroma server at chroma_host:chroma_port, shared by every process of the install (each install
    # has its own database in it). embedded: Chroma on disk under data_dir/chroma, inside this process: for one
    # process alone (several work, but each search after another process wrote costs a sync write).
    chroma_mode: Literal["server", "embedded"] = "server"
    chroma_host: str = Field(default="127.0.0.1", min_length=1)
    chroma_port: int = Field(default=8000, ge=1, le=65535)
    # The HNSW graph of a gallery's collection, taken when it is created or rebuilt (`reindex.py`); measured
    # choices per gallery size in docs/scaling.md. M and ef_construction fix the graph, ef_search the breadth.
    hnsw_m: int = Field(default=32, ge=4, le=128)
    hnsw_ef_construction: int = Field(default=200, ge=10, le=2000)
    hnsw_ef_search: int = Field(default=200, ge=10, le=5000)
    chroma_token: SecretStr | None = None

    @field_validator("model_dir", "input_roots", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        """FACEREG_MODEL_DIR is a path list like PATH: entries separated by os.pathsep."""
        if isinstance(value, str):
            return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':')[0]}:***@{hosts}"))


def env_variable(field: str) -> str:
    """The FACEREG_* variable of a Settings field."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _env_value(variable: str, value: object) -> str:
    """`value` as the text the Settings parser reads back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):  # a path list (NoDecode, see _split_paths): entries joined like PATH
        entries = [str(p) for p in value]
        if any(os.pathsep in e or not e.strip() for e in entries):
            raise ValueError(f"{variable}: an entry holds {os.pathsep!r} or is blank: {entries!r}")
        return os.pathsep.join(entries)
    if isinstance(value, str | int | float | Path):
        return str(value)
    raise TypeError(f"{variable}: no environment form for a {type(value).__name__}")


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as its FACEREG_* variable, secrets included (for a child process's environment, never a
    log): `Settings()` in that environment equals `settings`. A None is left out, so the child must not inherit
    that variable (see `without_settings`); a None whose default is not None cannot be said and is an error."""
    env: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        value, variable = getattr(settings, field), env_variable(field)
        if value is None:
            if info.get_default(call_default_factory=True) is not None:
                raise ValueError(f"{variable}: None cannot be passed through the environment (the default is not)")
            continue
        env[variable] = _env_value(variable, value)
    return env


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any variable Settings reads (names are case-insensitive): the base of a child's
    environment whose settings come from `settings_env`."""
    names = {env_variable(field) for field in Settings.model_fields}
    return {key: value for key, value in environ.items() if key.upper() not in names}

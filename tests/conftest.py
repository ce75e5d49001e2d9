"""Shared fixtures: settings, real LFW faces, a loaded pipeline per model, the local servers."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from model.pipeline import FacePipeline
from scripts.supervisor import supervisor
from services.config import Settings
from services.engine import build_pipeline


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock",
        default=os.environ.get("FACEREG_TEST_CLOCK"),
        help="run the whole session with this process's clock moved to HH:MM UTC today, or to an ISO time "
        "(the clock keeps ticking); the suite must pass at any hour, e.g. --clock 00:30 and --clock 23:30",
    )


def clock_start(value: str, today: datetime) -> datetime:
    """`HH:MM` (UTC, on `today`'s date) or a full ISO time (UTC when it names no zone)."""
    if len(value) <= 5 and ":" in value:
        hour, minute = (int(part) for part in value.split(":"))
        return today.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def machine_now() -> datetime:
    """The machine's clock, the one child processes (workers, CLIs, the dashboard) see, also while
    `--clock` moves this process's."""
    escape = time_machine.escape_hatch
    return datetime.fromtimestamp(escape.time.time() if escape.is_travelling() else time.time(), UTC)


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("--clock")
    if value:
        traveller = time_machine.travel(clock_start(value, datetime.now(UTC)), tick=True)
        traveller.start()
        config.stash[_TRAVELLER] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    value = config.getoption("--clock")
    return f"clock moved to {clock_start(value, datetime.now(UTC)).isoformat()} (ticking)" if value else None


_TRAVELLER = pytest.StashKey[time_machine.travel]()


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


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual permissive umask for this process and the children it starts; restored afterwards."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One MongoDB-protocol server, one Redis and one Chroma server for the whole session, under a temporary
    data dir.

    The input roots are this session's temporary folder and the datasets: tasks and CLIs may read any
    file a test writes; the tests of the roots themselves narrow them."""
    data = tmp_path_factory.mktemp("infra")
    datasets = Settings().datasets
    settings = Settings(
        data_dir=data,
        input_roots=[tmp_path_factory.getbasetemp(), *([datasets] if datasets else [])],
        mongo_uri=f"mongodb://127.0.0.1:{free_port()}/facereg",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        chroma_port=free_port(),  # the local default: a Chroma server; each test's install has its own database
        torch_threads=2,
        timezone="UTC",  # tests that reason about days name their zone; the machine's never matters
    )
    problems = supervisor.start(settings)
    if problems:
        supervisor.stop(settings)
        pytest.fail("local services did not start: " + "; ".join(problems))
    yield settings
    supervisor.stop(settings)

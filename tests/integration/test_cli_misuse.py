"""Every script, misused, as an operator would run it (a child process): exit code 2, exactly one line on stderr
that names the script (or starts with `error:`), never a traceback. Argument errors come before any model or
server is touched, so each run costs only the script's imports; the runs go four at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.config import REPO_ROOT

pytestmark = pytest.mark.slow  # about 2.5 s of imports per run

# (script, arguments, a part of the expected line); {dir} is a folder and {file} a file that exist,
# {missing} a path that does not.
CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("verify_faces.py", ("{file}", "{file}", "--threshold", "nan"), "--threshold: 'nan' must be a finite number"),
    ("verify_faces.py", ("{missing}", "{file}"), "argument image_a: {missing} does not exist"),
    ("dedup.py", ("folder", "{missing}"), "argument target: {missing} does not exist"),
    ("dedup.py", ("folder", "{dir}", "--similarity", "inf"), "--similarity: 'inf' must be a finite number"),
    ("dedup.py", ("review", "default", "--threshold", "-1.01"), "--threshold: '-1.01'"),
    ("evaluate.py", ("verify", "--root", "{missing}", "--pairs", "{file}"), "--root: {missing} does not exist"),
    ("evaluate.py", ("verify", "--root", "{dir}", "--pairs", "{missing}"), "--pairs: {missing} does not exist"),
    (
        "evaluate.py",
        ("verify", "--root", "{dir}", "--pairs", "{file}", "--folds", "0"),
        "--folds: 0 must be at least 1",
    ),
    ("evaluate.py", ("open-set", "--root", "{dir}", "--split", "{file}", "--target-fpir", "0"), "--target-fpir: '0'"),
    ("local_services.py", ("start", "--workers", "-1"), "--workers: -1 must be from 0 to 64"),
    ("reconcile.py", ("--all",), "unrecognized arguments: --all"),
    ("reindex.py", ("default", "--runtime", "tflite"), "invalid choice: 'tflite'"),
    ("export_onnx.py", ("mobilefacenet", "--min-cosine", "nan"), "--min-cosine: 'nan'"),
    ("download_weights.py", ("facenet",), "invalid choice: 'facenet'"),
    ("compose_env.py", ("--mongo-user", "a b"), "--mongo-user: letters, digits"),
    ("dashboard_users.py", ("add", "ann", "--role", "owner"), "invalid choice: 'owner'"),
    # build_database.py (its own helper fixes these; they stay here so every script is covered)
    ("build_database.py", ("{missing}",), "{missing} does not exist"),
    ("build_database.py", ("{file}",), "{file} is a file, not a folder"),
    ("build_database.py", ("{dir}", "--chunk", "0"), "--chunk: 0 must be"),
    ("build_database.py", ("{dir}", "--enroll-per-person", "-1"), "--enroll-per-person: -1 must be at least 0"),
    ("build_database.py", ("{dir}", "--max-persons", "-5"), "--max-persons: -5 must be at least 0"),
]

# An invalid FACEREG_* value, whichever script reads the settings: the same one line naming the variable(s).
BAD_SETTINGS: list[tuple[str, tuple[str, ...], dict[str, str], str]] = [
    ("reconcile.py", (), {"FACEREG_MIN_FACE_SIZE": "abc"}, "error: invalid setting FACEREG_MIN_FACE_SIZE: Input"),
    ("verify_faces.py", ("{file}", "{file}"), {"FACEREG_MIN_FACE_SIZE": "abc"}, "FACEREG_MIN_FACE_SIZE: Input"),
    ("build_database.py", ("{dir}",), {"FACEREG_MIN_FACE_SIZE": "abc"}, "FACEREG_MIN_FACE_SIZE: Input"),
    ("benchmark.py", ("index",), {"FACEREG_TORCH_THREADS": "-1"}, "error: invalid setting FACEREG_TORCH_THREADS"),
    (
        "local_services.py",
        ("status",),
        {"FACEREG_MIN_FACE_SIZE": "abc", "FACEREG_DETECTOR": "haar"},
        "error: invalid settings FACEREG_DETECTOR: Input should be 'auto', 'mtcnn', 'yunet' or 'retinaface'; "
        "FACEREG_MIN_FACE_SIZE: Input",
    ),
]

Case = tuple[str, tuple[str, ...], dict[str, str]]  # script, arguments, added variables
Run = tuple[subprocess.CompletedProcess[str], Callable[[str], str]]


def _key(script: str, args: tuple[str, ...], env: dict[str, str] | None = None) -> str:
    return " ".join((*(f"{k}={v}" for k, v in (env or {}).items()), script, *args))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case run once, four at a time, in a scratch data folder."""
    base = tmp_path_factory.mktemp("misuse")
    (base / "photos").mkdir()
    (base / "photo.jpg").write_bytes(b"\xff\xd8 not really a photo")
    names = {"dir": str(base / "photos"), "file": str(base / "photo.jpg"), "missing": str(base / "gone.jpg")}

    def fill(text: str) -> str:
        return text.format(**names)

    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEREG_")}
    env["FACEREG_DATA_DIR"] = str(base / "data")

    def run(case: Case) -> Run:
        script, args, extra = case
        cmd = [sys.executable, str(REPO_ROOT / "scripts" / script), *map(fill, args)]
        proc = subprocess.run(cmd, cwd=base, env=env | extra, capture_output=True, text=True, timeout=120, check=False)
        return proc, fill

    cases: list[Case] = [(s, a, {}) for s, a, _ in CASES] + [(s, a, e) for s, a, e, _ in BAD_SETTINGS]
    with ThreadPoolExecutor(4) as pool:
        return {_key(*case): result for case, result in zip(cases, pool.map(run, cases), strict=True)}


@pytest.mark.parametrize(("script", "args", "expected"), CASES, ids=[_key(s, a) for s, a, _ in CASES])
def test_misuse_is_one_line_and_exit_2(runs: dict[str, Run], script: str, args: tuple[str, ...], expected: str) -> None:
    assert_one_line(*runs[_key(script, args)], script, expected)


@pytest.mark.parametrize(
    ("script", "args", "env", "expected"), BAD_SETTINGS, ids=[_key(s, a, e) for s, a, e, _ in BAD_SETTINGS]
)
def test_an_invalid_setting_is_one_line_and_exit_2(
    runs: dict[str, Run], script: str, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    proc, fill = runs[_key(script, args, env)]
    assert_one_line(proc, fill, script, expected)
    assert all(f"{name}: " in proc.stderr for name in env)  # every invalid variable is named


def assert_one_line(
    proc: subprocess.CompletedProcess[str], fill: Callable[[str], str], script: str, expected: str
) -> None:
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith((f"{script}", "error:")), lines[0]
    assert fill(expected) in lines[0], lines[0]
    assert proc.stdout == ""

"""The command-line argument types, the one-line misuse parser, the exit codes of scripts.cli.run and the
services' own threshold check."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from model.errors import NoFace
from scripts import cli
from scripts.cli_args import COUNT, FRACTION, POSITIVE, SIMILARITY, TOP_K, existing_dir, existing_file
from services.config import Settings
from services.dedup.duplicates import find_folder_duplicates, find_gallery_duplicates, scan_identity_candidates
from services.search.verification import InvalidThreshold, checked_similarity, verify_images


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (SIMILARITY, "0.31", 0.31),
        (SIMILARITY, "-1", -1.0),
        (SIMILARITY, "1e0", 1.0),
        (FRACTION, "0", 0.0),
        (FRACTION, "1.0", 1.0),
        (TOP_K, "1", 1),
        (TOP_K, "100", 100),
        (COUNT, "0", 0),
        (POSITIVE, "7", 7),
    ],
)
def test_good_values_are_parsed(kind: Callable[[str], object], text: str, value: object) -> None:
    assert kind(text) == value


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (SIMILARITY, "nan", "finite number from -1 to 1"),
        (SIMILARITY, "inf", "finite number from -1 to 1"),
        (SIMILARITY, "-inf", "finite number from -1 to 1"),
        (SIMILARITY, "1.0001", "finite number from -1 to 1"),
        (SIMILARITY, "high", "is not a number"),
        (SIMILARITY, "", "is not a number"),
        (FRACTION, "-0.1", "from 0 to 1"),
        (FRACTION, "NaN", "from 0 to 1"),
        (TOP_K, "0", "from 1 to 100"),
        (TOP_K, "-1", "from 1 to 100"),
        (TOP_K, "101", "from 1 to 100"),
        (TOP_K, "5.0", "not a whole number"),
        (COUNT, "-5", "at least 0"),
        (POSITIVE, "0", "at least 1"),
        (POSITIVE, "1e3", "not a whole number"),
    ],
)
def test_bad_values_are_refused(kind: Callable[[str], object], text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        kind(text)


def test_existing_dir_and_file(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert existing_dir(str(tmp_path)) == tmp_path
    assert existing_file(str(photo)) == photo
    for kind, text, reason in [
        (existing_dir, str(photo), "is a file, not a folder"),
        (existing_dir, str(tmp_path / "gone"), "does not exist"),
        (existing_file, str(tmp_path), "is not a regular file"),
        (existing_file, str(fifo), "is not a regular file"),
        (existing_file, str(tmp_path / "gone.jpg"), "does not exist"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=reason):
            kind(text)


def test_a_name_that_is_not_utf8_is_printable(tmp_path: Path) -> None:
    name = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.jpg")
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        existing_file(name)
    assert "caf\\xe9.jpg does not exist" in str(exc.value)
    str(exc.value).encode("utf-8")  # printable anywhere


def _misuse(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    p = cli.parser("demo")
    p.add_argument("--threshold", type=SIMILARITY)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("go").add_argument("--top-k", type=TOP_K)
    with pytest.raises(SystemExit) as exit_:
        p.parse_args(argv)
    assert exit_.value.code == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err, err
    return err


def test_misuse_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert "error: argument --threshold: 'nan' must be a finite number" in _misuse(["--threshold", "nan", "go"], capsys)
    assert "error: the following arguments are required: command" in _misuse([], capsys)
    assert ": error: argument --top-k: 0 must be from 1 to 100 (see --help)" in _misuse(["go", "--top-k", "0"], capsys)


@pytest.fixture
def same_umask() -> Iterator[None]:
    """cli.run tightens the umask of the process (pytest's here): put it back afterwards."""
    old = os.umask(0o077)
    os.umask(old)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    ("raised", "line"),
    [
        (NoFace("no face in a.jpg"), "error: NoFace: no face in a.jpg"),
        (
            FileNotFoundError(2, "No such file or directory", "/no/such.csv"),
            "error: No such file or directory: /no/such.csv",
        ),
        (PermissionError(13, "Permission denied", b"/x/caf\xe9.jpg"), "error: Permission denied: /x/caf\\xe9.jpg"),
        (IsADirectoryError(21, "Is a directory"), "error: Is a directory"),
    ],
)
def test_run_turns_input_errors_into_one_line_and_exit_2(
    raised: Exception, line: str, capsys: pytest.CaptureFixture[str], same_umask: None
) -> None:
    def main() -> int:
        raise raised

    with pytest.raises(SystemExit) as exit_:
        cli.run(main)
    assert exit_.value.code == cli.EXIT_BAD_INPUT
    assert capsys.readouterr().err == line + "\n"


def test_run_keeps_the_exit_code_of_main(same_umask: None) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.run(lambda: 1)
    assert exit_.value.code == 1


@pytest.mark.parametrize("value", [0.31, -1, 1, np.float32(0.5), np.float64(-0.25)])
def test_checked_similarity_accepts_cosines(value: float) -> None:
    assert checked_similarity(value) == pytest.approx(float(value))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1.5, -2, True, "0.5", None, np.float32("nan")])
def test_checked_similarity_refuses_the_rest(value: object) -> None:
    with pytest.raises(InvalidThreshold, match="threshold must be a finite number from -1 to 1"):
        checked_similarity(value)


def test_the_services_refuse_a_bad_threshold_before_reading_anything(tmp_path: Path) -> None:
    nothing = cast(Any, None)  # neither a model nor a database is touched
    calls: list[Callable[[], object]] = [
        lambda: verify_images(Settings(), tmp_path / "a.jpg", tmp_path / "b.jpg", threshold=math.nan),
        lambda: find_folder_duplicates(nothing, tmp_path, similarity=math.inf),
        lambda: find_gallery_duplicates(nothing, "default", similarity=-1.5),
        lambda: scan_identity_candidates(nothing, "default", threshold=math.nan),
    ]
    for call in calls:
        with pytest.raises(InvalidThreshold):
            call()

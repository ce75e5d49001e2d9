"""Reading inputs only under the allowed roots (services.storage.input_paths) and image payloads that survive any
file name (workers.payloads): symlinks out, loops, FIFOs, devices, sparse giants, non-UTF-8 names."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from model.errors import ImageTooLarge, InvalidImage
from services.storage.input_paths import (
    ROOTS_SETTING,
    InputRefused,
    OutsideInputRoots,
    printable,
    read_input,
    resolve_folder,
    resolve_input,
)
from workers import payloads

LIMIT = 1024 * 1024
NON_UTF8 = os.fsdecode(b"caf\xe9.jpg")
_OPENED: list[list[str]] = []  # the paths opened while `opened()` records (audit hooks cannot be removed)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENED and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED[-1].append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened() -> Iterator[list[str]]:
    """Every file this process opens meanwhile (Python's `open` audit event: os.open, io.open)."""
    _OPENED.append([])
    try:
        yield _OPENED[-1]
    finally:
        _OPENED.pop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"inside")
    (tmp_path / "out" / "secret.jpg").write_bytes(b"outside")
    return (tmp_path / "in").resolve()


def test_printable_is_utf8_text_for_any_name() -> None:
    assert printable(b"caf\xe9.jpg") == printable(NON_UTF8) == printable(Path(NON_UTF8)) == "caf\\xe9.jpg"
    assert printable("José.jpg") == "José.jpg"
    lone = printable("x\ud800.jpg")  # a JSON message can carry a surrogate no file name holds
    assert lone.encode("utf-8") and lone.startswith("x") and lone.endswith(".jpg")


def test_a_file_under_the_roots_is_read(root: Path) -> None:
    assert read_input(root / "a.jpg", [root], LIMIT) == b"inside"
    (root / "sub").mkdir()
    assert read_input(root / "sub" / ".." / "a.jpg", [root], LIMIT) == b"inside"


@pytest.mark.parametrize("path", ["/etc/shadow", "/proc/self/environ", "/no/such/file.jpg", "../out/secret.jpg"])
def test_paths_outside_the_roots_are_refused_existing_or_not(root: Path, path: str) -> None:
    with pytest.raises(OutsideInputRoots, match=ROOTS_SETTING):
        read_input(root / path, [root], LIMIT)


def test_a_symlink_leaving_the_roots_is_refused_one_inside_is_followed(root: Path) -> None:
    (root / "out.jpg").symlink_to(root.parent / "out" / "secret.jpg")
    (root / "shadow.jpg").symlink_to("/etc/shadow")
    (root / "dir").symlink_to(root.parent / "out")
    (root / "same.jpg").symlink_to(root / "a.jpg")
    for name in ("out.jpg", "shadow.jpg", "dir/secret.jpg"):
        with pytest.raises(OutsideInputRoots, match=ROOTS_SETTING):
            read_input(root / name, [root], LIMIT)
    assert read_input(root / "same.jpg", [root], LIMIT) == b"inside"


def test_nothing_outside_the_roots_is_opened(root: Path) -> None:
    (root / "out.jpg").symlink_to(root.parent / "out" / "secret.jpg")
    os.mkfifo(root / "pipe.jpg")
    refused: list[str | Path] = ["/etc/shadow", "/proc/self/environ", "/dev/zero", root / "out.jpg", root]
    refused.append(root / "pipe.jpg")
    with opened() as paths:
        for path in refused:
            with pytest.raises(InputRefused):
                read_input(path, [root], LIMIT)
        assert read_input(root / "a.jpg", [root], LIMIT) == b"inside"
    assert paths == [str(root / "a.jpg")]  # only the one regular file inside the roots


def test_a_symlink_loop_is_a_refusal(root: Path) -> None:
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    for name in ("loop1", "loop1/x.jpg"):
        with pytest.raises(InputRefused, match="cannot be resolved"):
            read_input(root / name, [root], LIMIT)


@pytest.mark.timeout(30)
def test_a_fifo_is_refused_without_blocking(root: Path) -> None:
    os.mkfifo(root / "pipe.jpg")  # nobody writes: opening it for reading would block
    with pytest.raises(InputRefused, match="not a regular file"):
        read_input(root / "pipe.jpg", [root], LIMIT)


def test_devices_and_folders_are_refused(root: Path) -> None:
    with pytest.raises(OutsideInputRoots):
        read_input("/dev/zero", [root], LIMIT)
    for device in ("/dev/zero", "/dev/null"):
        with pytest.raises(InputRefused, match="not a regular file"):
            read_input(device, [Path("/dev")], LIMIT)
    with pytest.raises(InputRefused, match="not a regular file"):
        read_input(root, [root], LIMIT)


def test_the_size_cap_applies_before_reading(root: Path) -> None:
    giant = root / "giant.jpg"
    with giant.open("wb") as f:
        f.truncate(10 * 1024**3)  # sparse: 10 GB long, no block on disk
    with pytest.raises(ImageTooLarge, match=f"{10 * 1024**3} bytes is over the limit"):  # the size from stat
        read_input(giant, [root], LIMIT)


def test_missing_files_and_bad_paths_are_typed(root: Path) -> None:
    with pytest.raises(InvalidImage, match="no such file"):
        read_input(root / "missing.jpg", [root], LIMIT)
    with pytest.raises(InvalidImage, match="not a valid path"):
        read_input(str(root / "a\0.jpg"), [root], LIMIT)


def test_non_utf8_names_are_read_and_reported_as_text(root: Path) -> None:
    (root / NON_UTF8).write_bytes(b"named")
    assert read_input(root / NON_UTF8, [root], LIMIT) == b"named"
    os.mkfifo(root / os.fsdecode(b"p\xff.jpg"))
    with pytest.raises(InputRefused) as refused:
        read_input(root / os.fsdecode(b"p\xff.jpg"), [root], LIMIT)
    assert "p\\xff.jpg" in str(refused.value) and str(refused.value).encode("utf-8")


def test_folders_resolve_under_the_roots_only(root: Path) -> None:
    assert resolve_folder(root, [root]) == root
    assert resolve_input(root / "a.jpg", [root]) == root / "a.jpg"
    with pytest.raises(OutsideInputRoots):
        resolve_folder(root.parent / "out", [root])
    with pytest.raises(InputRefused, match="not a folder"):
        resolve_folder(root / "a.jpg", [root])
    with pytest.raises(InputRefused, match="no such folder"):
        resolve_folder(root / "nowhere", [root])


def test_a_non_utf8_path_travels_as_bytes_in_json(root: Path) -> None:
    (root / NON_UTF8).write_bytes(b"named")
    payload = payloads.from_path(root / NON_UTF8)
    assert "path" not in payload and payload["name"] == "caf\\xe9.jpg"
    wire = json.dumps(payload, ensure_ascii=False).encode("utf-8")  # what Celery, Redis and BSON need
    assert payloads.read(json.loads(wire), [root], LIMIT) == ("caf\\xe9.jpg", b"named")
    plain = payloads.from_path(root / "a.jpg")
    assert plain == {"name": "a.jpg", "path": str(root / "a.jpg")}


def test_payload_paths_are_read_under_the_roots_only(root: Path) -> None:
    for payload in ({"path": "/etc/shadow"}, {"path": "/proc/self/environ"}, payloads.from_path("/etc/passwd")):
        with pytest.raises(OutsideInputRoots, match=ROOTS_SETTING):
            payloads.read(payload, [root], LIMIT)
    with pytest.raises(OutsideInputRoots, match=ROOTS_SETTING):  # the settings' roots by default
        payloads.read({"path": "/etc/shadow"})


def test_inline_images_are_capped_before_decoding() -> None:
    not_base64 = "!" * (20 * 1024 * 1024)  # decoding it would fail; the length alone refuses it
    with pytest.raises(ImageTooLarge, match="allowed inline"):
        payloads.read({"b64": not_base64}, [], LIMIT * 64)
    with pytest.raises(ImageTooLarge):  # the smaller of the inline limit and max_bytes
        payloads.read(payloads.from_bytes(b"x" * 2048, "a.jpg"), [], 1024)
    assert payloads.read(payloads.from_bytes(b"x" * 2048, "a.jpg"), [], LIMIT) == ("a.jpg", b"x" * 2048)
    with pytest.raises(InvalidImage, match="not valid base64"):
        payloads.read({"b64": "abc"}, [], LIMIT)


@pytest.mark.parametrize(
    "payload",
    [
        "a.jpg",
        {"name": "a"},
        {"path": "/x", "b64": "eA=="},
        {"b64": 12},
        {"path": ""},
        {"path_b64": "%%%"},
        {"path": "x" * 10_000},
    ],
)
def test_malformed_payloads_are_invalid_images(payload: object) -> None:
    with pytest.raises(InvalidImage):
        payloads.read(payload, [], LIMIT)  # type: ignore[arg-type]


def test_names_are_bounded_utf8_text() -> None:
    long = payloads.read({"name": "n" * 10_000, "b64": base64.b64encode(b"x").decode()}, [], LIMIT)[0]
    assert len(long) <= payloads.MAX_NAME_CHARS
    assert payloads.from_bytes(b"x", NON_UTF8)["name"] == "caf\\xe9.jpg"

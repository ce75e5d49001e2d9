"""Data at rest is private: the umask, the walk that tightens an existing data folder, private writes."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from services.dedup.duplicates import DuplicateGroup, resolve_folder_duplicates
from services.storage import private_files
from services.storage.image_store import ImageStore
from services.storage.private_files import (
    open_private_log,
    private_mkdir,
    private_umask,
    secure_data_dir,
    secure_process,
    write_private,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose_entries(root: Path) -> list[str]:
    """Every entry under root (root included, symlinks excluded) with a group or other permission bit."""
    out = [] if not mode(root) & 0o077 else [f"{oct(mode(root))} {root}"]
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            if not p.is_symlink() and mode(p) & 0o077:
                out.append(f"{oct(mode(p))} {p}")
    return out


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private_files, "_secured", set())


def current_umask() -> int:
    old = os.umask(0o077)
    os.umask(old)
    return old


def test_private_umask_adds_077_and_keeps_a_stricter_one(umask_022: None) -> None:
    assert private_umask() == 0o022
    assert current_umask() == 0o077
    assert private_umask() == 0o077  # idempotent
    assert current_umask() == 0o077
    os.umask(0o277)
    private_umask()
    assert current_umask() == 0o277  # never loosened


def test_private_umask_makes_new_files_private(tmp_path: Path, umask_022: None) -> None:
    private_umask()
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("x")
    assert mode(tmp_path / "dir") == 0o700
    assert mode(tmp_path / "dir" / "f.txt") == 0o600


def test_private_mkdir_and_write_private_ignore_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        target = tmp_path / "a" / "b" / "c.bin"
        write_private(target, b"data")
        assert target.read_bytes() == b"data"
        assert mode(target) == 0o600
        assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
        assert not target.with_name("c.bin.part").exists()
        # An existing loose file and a leftover .part do not keep their modes.
        target.chmod(0o644)
        leftover = target.with_name("c.bin.part")
        leftover.write_bytes(b"old")
        leftover.chmod(0o666)
        write_private(target, b"new")
        assert target.read_bytes() == b"new" and mode(target) == 0o600
        private_mkdir(tmp_path / "x" / "y")
        assert mode(tmp_path / "x") == 0o700 and mode(tmp_path / "x" / "y") == 0o700
        with open_private_log(tmp_path / "logs" / "w.log") as log:
            log.write(b"line\n")
        assert mode(tmp_path / "logs" / "w.log") == 0o600 and mode(tmp_path / "logs") == 0o700
    finally:
        os.umask(old)


def test_secure_data_dir_creates_the_folder_0700(tmp_path: Path, umask_022: None) -> None:
    data = tmp_path / "new" / "data"
    assert secure_data_dir(data) == 0
    assert mode(data) == 0o700


def test_secure_data_dir_tightens_an_existing_install(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "images" / "g" / "p1").mkdir(parents=True)
    (data / "mongo").mkdir()
    (data / "images" / "g" / "p1" / "a.img").write_bytes(b"x")
    (data / "images" / "g" / "p1" / "a_chip.png").write_bytes(b"x")
    (data / "mongo" / "db.wt").write_bytes(b"x")
    run = data / "run"
    run.mkdir()
    (run / "tool").write_bytes(b"#!/bin/sh\n")
    (run / "tool").chmod(0o755)
    (run / "already.pid").write_bytes(b"1")
    (run / "already.pid").chmod(0o600)
    (run / "readonly").write_bytes(b"1")
    (run / "readonly").chmod(0o444)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"shared dataset")
    outside.chmod(0o644)
    (data / "link.jpg").symlink_to(outside)
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    outside_dir.chmod(0o755)
    (data / "dirlink").symlink_to(outside_dir, target_is_directory=True)
    data.chmod(0o755)

    with caplog.at_level(logging.INFO, logger="services.storage.private_files"):
        changed = secure_data_dir(data)
    # folders: data, images, g, p1, mongo, run = 6; files: a.img, a_chip.png, db.wt, tool, readonly = 5
    assert changed == 11
    assert loose_entries(data) == []
    assert mode(run / "tool") == 0o700  # owner bits kept
    assert mode(run / "readonly") == 0o400  # never adds a permission
    assert mode(outside) == 0o644 and mode(outside_dir) == 0o755  # symlinks are not followed
    lines = [r.getMessage() for r in caplog.records if r.name == "services.storage.private_files"]
    assert len(lines) == 1
    assert "tightened 5 file(s) and 6 folder(s)" in lines[0] and str(data.resolve()) in lines[0]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="services.storage.private_files"):
        assert secure_data_dir(data) == 0  # nothing left to do: no log line
    assert not [r for r in caplog.records if r.name == "services.storage.private_files"]


def test_secure_process_walks_once_per_folder(tmp_path: Path, umask_022: None, fresh_cache: None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_bytes(b"x")
    (data / "f").chmod(0o644)
    assert secure_process(data) == 2  # the folder and the file
    assert current_umask() == 0o077
    (data / "g").write_bytes(b"x")
    (data / "g").chmod(0o644)
    os.umask(0o022)
    assert secure_process(data) == 0  # not walked again in this process ...
    assert current_umask() == 0o077  # ... but the umask is checked every time
    assert mode(data / "g") == 0o644


def test_image_store_writes_private_files_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = ImageStore(tmp_path / "images")
        original = store.save_original("g", "p1", "abc", b"jpeg bytes")
        chip = store.save_chip("g", "p1", "abc", np.zeros((112, 112, 3), np.uint8))
        copied = store.copy_face("g", "p2", str(original), str(chip))
    finally:
        os.umask(old)
    for p in [original, chip, *map(Path, copied)]:
        assert mode(p) == 0o600, p
    assert loose_entries(tmp_path / "images") == []


def test_folder_quarantine_is_private_and_leaves_link_targets_alone(tmp_path: Path, umask_022: None) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    keep, copy = folder / "a.jpg", folder / "b.jpg"
    keep.write_bytes(b"a")
    copy.write_bytes(b"b")
    copy.chmod(0o644)
    target = tmp_path / "dataset.jpg"
    target.write_bytes(b"c")
    target.chmod(0o644)
    (folder / "c.jpg").symlink_to(target)
    group = DuplicateGroup([str(keep), str(copy), str(folder / "c.jpg")], str(keep), 0.99, 0)
    quarantine = tmp_path / "q"
    moved = resolve_folder_duplicates([group], quarantine)
    assert len(moved) == 2
    assert mode(quarantine) == 0o700 and mode(quarantine / "manifest.jsonl") == 0o600
    assert mode(Path(moved[0]["to"])) == 0o600
    assert mode(target) == 0o644  # a moved symlink's target is not ours to change


def test_walk_of_a_big_data_folder_is_cheap(tmp_path: Path) -> None:
    """~15,000 files in the layout of images/<gallery>/<person>/: one walk must stay well under a second."""
    data = tmp_path / "data"
    old = os.umask(0o022)
    try:
        for p in range(2500):
            person = data / "images" / "g" / f"p{p:05d}"
            person.mkdir(parents=True)
            for f in range(6):
                (person / f"{f}.img").write_bytes(b"")
        t0 = time.perf_counter()
        first = secure_data_dir(data)
        tighten_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = secure_data_dir(data)
        check_s = time.perf_counter() - t0
    finally:
        os.umask(old)
    assert first == 15000 + 2500 + 3  # files, person folders, data/images/g
    assert again == 0
    print(f"walk of {first} entries: tighten {tighten_s * 1000:.0f} ms, check {check_s * 1000:.0f} ms")
    assert check_s < 2.0 and tighten_s < 5.0

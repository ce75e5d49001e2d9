"""Evaluation splits from folders, and uploaded zips unpacked without escaping their folder."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from model.evaluation.protocols import DatasetError
from services.evaluation.sources import extract_zip, folder_rows


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_folder_rows_split_each_person(tmp_path: Path) -> None:
    for person, n in (("ann", 3), ("bob", 1), ("cid", 2)):
        (tmp_path / person).mkdir()
        for i in range(n):
            (tmp_path / person / f"{i}.jpg").write_bytes(b"x")
    rows = folder_rows(tmp_path, 1)
    roles = {(r.identity, r.path): r.role for r in rows}
    assert roles[("ann", "ann/0.jpg")] == "enroll" and roles[("ann", "ann/2.jpg")] == "probe"
    assert roles[("bob", "bob/0.jpg")] == "enroll"
    assert sum(r.role == "probe" for r in rows) == 3
    assert {r.identity for r in folder_rows(tmp_path, 1, max_persons=2)} == {"ann", "bob"}
    with pytest.raises(DatasetError, match="nothing is left to probe"):
        folder_rows(tmp_path, 3)


def test_zip_is_unpacked_below_its_wrapping_folders(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "a.zip",
        {
            "lfw/images/ann/1.jpg": b"1",
            "lfw/images/ann/2.jpg": b"2",
            "lfw/images/bob/1.png": b"3",
            "lfw/images/bob/notes.txt": b"skip",
            "__MACOSX/lfw/._x": b"",
        },
    )
    root = extract_zip(archive, tmp_path / "out")
    assert root == tmp_path / "out" / "lfw" / "images"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "ann/1.jpg",
        "ann/2.jpg",
        "bob/1.png",
    ]


@pytest.mark.parametrize("name", ["../evil/1.jpg", "/abs/1.jpg", "ok/../../evil.jpg"])
def test_zip_entries_leaving_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "a.zip", {name: b"x", "ann/1.jpg": b"y"})
    with pytest.raises(DatasetError, match="outside"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_not_a_zip_and_an_empty_zip_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match="not a zip"):
        extract_zip(tmp_path / "x.zip", tmp_path / "out")
    with pytest.raises(DatasetError, match="no <person>"):
        extract_zip(_zip(tmp_path / "e.zip", {"readme.txt": b"x"}), tmp_path / "out2")


def test_a_zip_that_unpacks_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import services.evaluation.sources as sources

    monkeypatch.setattr(sources, "MAX_ZIP_BYTES", 1000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ann/1.jpg", b"\0" * 5000)
    (tmp_path / "bomb.zip").write_bytes(buf.getvalue())
    with pytest.raises(DatasetError, match="more than"):
        extract_zip(tmp_path / "bomb.zip", tmp_path / "out")

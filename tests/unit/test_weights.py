from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from model.errors import ModelUnavailable, WeightsMismatch
from model.weights import download, find_weights, sha256_file, verify_sha256


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_find_weights_returns_the_file_of_the_first_dir_that_has_it(tmp_path: Path) -> None:
    empty, first, second = tmp_path / "empty", tmp_path / "first", tmp_path / "second"
    empty.mkdir()
    _write(first / "w.pt", b"first")
    _write(second / "w.pt", b"second")
    assert find_weights("w.pt", [empty, first, second]) == first / "w.pt"
    assert find_weights("w.pt", [second, first]) == second / "w.pt"
    assert find_weights("other.pt", [empty, first, second]) is None


def test_find_weights_looks_in_the_subdir_and_ignores_directories(tmp_path: Path) -> None:
    nested = _write(tmp_path / "model" / "w.pt", b"x")
    assert find_weights("w.pt", [tmp_path]) is None
    assert find_weights("w.pt", [tmp_path], subdir="model") == nested
    (tmp_path / "dir.pt").mkdir()
    assert find_weights("dir.pt", [tmp_path]) is None


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # over one read chunk
    assert sha256_file(_write(tmp_path / "w.bin", data)) == _sha(data)


def test_verify_sha256(tmp_path: Path) -> None:
    path = _write(tmp_path / "w.bin", b"weights")
    verify_sha256(path, _sha(b"weights"))
    verify_sha256(path, None)
    with pytest.raises(WeightsMismatch, match="sha256"):
        verify_sha256(path, _sha(b"other"))


def test_download_moves_a_verified_file_into_place(tmp_path: Path) -> None:
    src = _write(tmp_path / "src" / "w.pt", b"remote weights")
    dest = tmp_path / "models" / "sub" / "w.pt"
    assert download(src.as_uri(), dest, _sha(b"remote weights")) == dest
    assert dest.read_bytes() == b"remote weights"
    assert list(dest.parent.iterdir()) == [dest]


def test_download_with_a_wrong_sha_leaves_nothing_behind(tmp_path: Path) -> None:
    src = _write(tmp_path / "src" / "w.pt", b"remote weights")
    dest = tmp_path / "models" / "w.pt"
    with pytest.raises(WeightsMismatch):
        download(src.as_uri(), dest, _sha(b"expected weights"))
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_download_of_an_unreachable_url_says_where_to_put_the_file(tmp_path: Path) -> None:
    dest = tmp_path / "models" / "w.pt"
    with pytest.raises(ModelUnavailable) as info:
        download("file:///nonexistent/path", dest, None)
    assert not isinstance(info.value, WeightsMismatch)
    assert "file:///nonexistent/path" in str(info.value)
    assert f"put it at {dest}" in str(info.value)
    assert list(dest.parent.iterdir()) == []


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A zip whose first member merely ends like the wanted one, then the wanted one nested in a folder."""
    path = tmp_path / "src" / "pack.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pack/xw.onnx", b"decoy")
        zf.writestr("pack/w.onnx", b"the member")
        zf.writestr("pack/readme.txt", b"text")
    return path


def test_download_extracts_exactly_the_archive_member(tmp_path: Path, archive: Path) -> None:
    dest = tmp_path / "models" / "w.onnx"
    assert download(archive.as_uri(), dest, _sha(b"the member"), archive_member="w.onnx") == dest
    assert dest.read_bytes() == b"the member"
    assert list(dest.parent.iterdir()) == [dest]


def test_download_of_a_missing_archive_member_raises_and_cleans_up(tmp_path: Path, archive: Path) -> None:
    dest = tmp_path / "models" / "w.onnx"
    with pytest.raises(ModelUnavailable, match=r"no member absent\.onnx"):
        download(archive.as_uri(), dest, None, archive_member="absent.onnx")
    assert list(dest.parent.iterdir()) == []


def test_download_of_an_archive_member_with_a_wrong_sha_cleans_up(tmp_path: Path, archive: Path) -> None:
    dest = tmp_path / "models" / "w.onnx"
    with pytest.raises(WeightsMismatch):
        download(archive.as_uri(), dest, _sha(b"expected"), archive_member="w.onnx")
    assert list(dest.parent.iterdir()) == []

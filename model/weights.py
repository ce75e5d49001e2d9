"""Finding, checking and downloading weight files."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from model.errors import ModelUnavailable, WeightsMismatch


def find_weights(filename: str, model_dirs: Sequence[Path], subdir: str | None = None) -> Path | None:
    """The first `<dir>/<filename>` or `<dir>/<subdir>/<filename>` that exists."""
    for d in model_dirs:
        for candidate in (d / filename, d / subdir / filename if subdir else None):
            if candidate is not None and candidate.is_file():
                return candidate
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> None:
    """Refuse a file whose sha256 differs from the recorded one (None: nothing recorded)."""
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsMismatch(
            f"{path}: sha256 {actual} differs from the recorded {expected}; the file is another model"
        )


def download(
    url: str, dest: Path, sha256: str | None, archive_member: str | None = None, timeout: float = 60.0
) -> Path:
    """Download to a temporary file, check the hash, then move into place (never half a file).

    `archive_member`: the URL is a zip and only this member is kept.
    """
    if archive_member is None:
        return _download_file(url, dest, sha256, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmpdir:
        archive = _download_file(url, Path(tmpdir) / "archive.zip", None, timeout)
        part = Path(tmpdir) / dest.name
        try:
            with zipfile.ZipFile(archive) as zf:
                names = [n for n in zf.namelist() if n == archive_member or n.endswith("/" + archive_member)]
                if not names:
                    raise ModelUnavailable(f"{url} has no member {archive_member}")
                with zf.open(names[0]) as src, part.open("wb") as out:
                    shutil.copyfileobj(src, out)
        except zipfile.BadZipFile as exc:
            raise ModelUnavailable(
                f"{url} is not a zip archive ({exc}); download it by hand and put {archive_member} at {dest}"
            ) from exc
        verify_sha256(part, sha256)
        part.replace(dest)
    return dest


def _download_file(url: str, dest: Path, sha256: str | None, timeout: float) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - URLs come from the zoo
                shutil.copyfileobj(resp, tmp)
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            raise ModelUnavailable(
                f"could not download {url} ({exc}); download it by hand and put it at {dest}"
            ) from exc
    try:
        verify_sha256(tmp_path, sha256)
    except WeightsMismatch:
        tmp_path.unlink(missing_ok=True)
        raise
    tmp_path.replace(dest)
    return dest

"""Stored images under the data dir: each enrolled original and its aligned chip."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2

from model.types import ImageArray
from services.storage.private_files import write_private


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def person_dir(self, gallery: str, person_id: str) -> Path:
        return self.root / gallery / person_id

    def save_original(self, gallery: str, person_id: str, sha256: str, data: bytes) -> Path:
        path = self.person_dir(gallery, person_id) / f"{sha256}.img"
        _atomic_write(path, data)
        return path

    def save_chip(self, gallery: str, person_id: str, sha256: str, chip: ImageArray) -> Path:
        ok, png = cv2.imencode(".png", cv2.cvtColor(chip, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode the chip of {sha256}")
        path = self.person_dir(gallery, person_id) / f"{sha256}_chip.png"
        _atomic_write(path, png.tobytes())
        return path

    def delete_face(self, image_path: str, chip_path: str) -> None:
        for p in (image_path, chip_path):
            Path(p).unlink(missing_ok=True)

    def copy_face(self, gallery: str, person_id: str, image_path: str, chip_path: str) -> tuple[str, str]:
        """The face's two files copied into another person's folder (a merge); their new paths."""
        out = []
        for p in (Path(image_path), Path(chip_path)):
            dest = self.person_dir(gallery, person_id) / p.name
            _atomic_write(dest, p.read_bytes())
            out.append(str(dest))
        return out[0], out[1]

    def delete_person(self, gallery: str, person_id: str) -> None:
        shutil.rmtree(self.person_dir(gallery, person_id), ignore_errors=True)


def _atomic_write(path: Path, data: bytes) -> None:
    """Faces are personal data: 0600 files in 0700 folders, whatever the umask."""
    write_private(path, data)

"""Photo uploads: accepted types and sizes, checked before anything is sent to a worker."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from model.image_io import UPLOAD_SUFFIXES
from workers.payloads import MAX_INLINE_BYTES, ImagePayload, from_bytes

PHOTO_TYPES = sorted(suffix.removeprefix(".") for suffix in UPLOAD_SUFFIXES)
MAX_PHOTO_MB = MAX_INLINE_BYTES // (1024 * 1024)
# The largest upload of all (an evaluation zip); .streamlit/config.toml sets the server's maxUploadSize to it.
MAX_UPLOAD_MB = 1024


@dataclass(frozen=True, slots=True)
class Photo:
    name: str
    data: bytes

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def payload(self) -> ImagePayload:
        return from_bytes(self.data, self.name)


def photo_uploader(label: str, key: str, multiple: bool = True, camera: bool = False) -> list[Photo]:
    """Uploaded (and optionally camera) photos; too-large files are named and left out."""
    got = st.file_uploader(
        label,
        type=PHOTO_TYPES,
        accept_multiple_files=multiple,
        key=key,
        max_upload_size=MAX_PHOTO_MB,
        help=f"JPEG, PNG, WebP or BMP, at most {MAX_PHOTO_MB} MB each.",
    )
    files = [f for f in (got if isinstance(got, list) else [got]) if f is not None]
    if camera and st.toggle("Take a photo with the camera", key=f"{key}:camera_on"):
        shot = st.camera_input("Camera", key=f"{key}:camera")
        if shot is not None:
            files.append(shot)
    photos = []
    for f in files:
        data = f.getvalue()
        if len(data) > MAX_INLINE_BYTES:
            st.error(f"{f.name} is {len(data) / 1e6:.1f} MB; at most {MAX_PHOTO_MB} MB per photo.")
            continue
        photos.append(Photo(f.name, data))
    return photos

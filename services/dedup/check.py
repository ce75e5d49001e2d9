"""Checking the folder dedup on real photos: inject re-encoded copies, see that each is found and
that no group joins two different source photos (except duplicates the data already had)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from model.image_io import load_image
from model.pipeline import FacePipeline
from model.types import ImageArray
from services.dedup.duplicates import find_folder_duplicates

KINDS = ("resized", "recompressed", "flipped")


def reencode(image: ImageArray, kind: str) -> ImageArray:
    """A copy as people make them: scaled down, saved at low JPEG quality, or mirrored."""
    if kind == "resized":
        h, w = image.shape[:2]
        return np.asarray(cv2.resize(image, (int(w * 0.6), int(h * 0.6)), interpolation=cv2.INTER_AREA))
    if kind == "recompressed":
        _, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
        decoded = np.asarray(cv2.imdecode(jpg, cv2.IMREAD_COLOR), dtype=np.uint8)
        return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))
    if kind == "flipped":
        return np.ascontiguousarray(image[:, ::-1])
    raise ValueError(f"unknown kind {kind}")


def build_folder(root: Path, paths: Sequence[str], n_inject: int, workdir: Path) -> dict[str, str]:
    """Link the photos into workdir/photos and write copies into workdir/injected; copy -> source path."""
    sources: dict[str, str] = {}
    for rel in paths:
        link = workdir / "photos" / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to((root / rel).resolve())
    step = max(1, len(paths) // max(n_inject, 1))
    for i, rel in enumerate(list(paths)[::step][:n_inject]):
        kind = KINDS[i % len(KINDS)]
        dest = workdir / "injected" / kind / f"{i:04d}_{Path(rel).name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dest), cv2.cvtColor(reencode(load_image(root / rel), kind), cv2.COLOR_RGB2BGR))
        sources[str(dest)] = str(workdir / "photos" / rel)
    return sources


def injected_copy_check(
    pipeline: FacePipeline, root: Path, paths: Sequence[str], n_inject: int, workdir: Path, similarity: float = 0.7
) -> dict[str, Any]:
    copies = build_folder(root, paths, n_inject, workdir)
    groups, failures = find_folder_duplicates(pipeline, workdir, similarity)
    group_of = {k: i for i, g in enumerate(groups) for k in g.keys}
    found = [c for c, src in copies.items() if c in group_of and group_of.get(src) == group_of[c]]
    joined = []  # groups holding more than one distinct source photo
    for g in groups:
        photos = sorted({copies.get(k, k) for k in g.keys})
        if len(photos) > 1:
            joined.append(
                {
                    "photos": [str(Path(p).relative_to(workdir / "photos")) for p in photos],
                    "min_similarity": round(g.min_similarity, 4),
                    "max_hash_distance": g.max_hash_distance,
                }
            )
    by_kind = {k: sum(1 for c in found if f"/injected/{k}/" in c) for k in KINDS}
    return {
        "n_photos": len(paths),
        "n_injected": len(copies),
        "injected_found": len(found),
        "found_by_kind": by_kind,
        "missed": sorted(set(copies) - set(found))[:50],
        "n_groups": len(groups),
        "groups_joining_different_photos": joined,
        "n_failed": len(failures),
    }

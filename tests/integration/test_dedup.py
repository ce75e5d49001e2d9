"""Duplicates: near-identical images (folder and gallery) and cross-person review decisions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.image_io import load_image
from model.pipeline import FacePipeline
from services.context import ServiceContext
from services.dedup.check import KINDS, reencode
from services.dedup.duplicates import (
    decide_review,
    find_folder_duplicates,
    find_gallery_duplicates,
    open_reviews,
    resolve_folder_duplicates,
    resolve_gallery_duplicates,
    scan_identity_candidates,
)
from services.errors import ServiceError
from services.registry.enrollment import ImageInput, enroll
from services.registry.persons import PersonInput

Img = Callable[[str, int], Path]


def save(image: np.ndarray, path: Path, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return path


def copies(image: np.ndarray) -> dict[str, np.ndarray]:
    return {kind: reencode(image, kind) for kind in KINDS}


def test_folder_dedup_finds_each_copy_and_keeps_photos_apart(mfn: FacePipeline, lfw_image: Img, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    for person in ("Colin_Powell", "Tony_Blair", "Serena_Williams"):
        (folder / person).mkdir(parents=True)
        for n in (1, 2):  # two different photos of the same person: never duplicates
            shutil.copy(lfw_image(person, n), folder / person / f"{n}.jpg")
    injected = {
        str(save(copy, folder / "Colin_Powell" / f"copy_{kind}.jpg"))
        for kind, copy in copies(load_image(lfw_image("Colin_Powell", 1))).items()
    }
    groups, failures = find_folder_duplicates(mfn, folder)
    assert not failures
    assert len(groups) == 1  # the original and its three copies form one group
    assert set(groups[0].keys) == {str(folder / "Colin_Powell" / "1.jpg"), *injected}
    moved = resolve_folder_duplicates(groups, tmp_path / "quarantine")
    assert len(moved) == 3 and Path(groups[0].best).exists()
    assert all(Path(m["to"]).exists() and not Path(m["from"]).exists() for m in moved)
    manifest = (tmp_path / "quarantine" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["kept"] for line in manifest] == [groups[0].best] * 3


def test_gallery_dedup_keeps_the_best_face_and_quarantines_the_rest(ctx: ServiceContext, lfw_image: Img) -> None:
    original = load_image(lfw_image("Tony_Blair", 1))
    recompressed = copies(original)["recompressed"]
    enc = [cv2.imencode(".jpg", cv2.cvtColor(x, cv2.COLOR_RGB2BGR))[1].tobytes() for x in (original, recompressed)]
    other = lfw_image("Tony_Blair", 2).read_bytes()
    result = enroll(
        ctx,
        PersonInput("Tony Blair"),
        [ImageInput("a.jpg", enc[0]), ImageInput("b.jpg", enc[1]), ImageInput("c.jpg", other)],
    )
    assert result.count("enrolled") == 3
    groups = find_gallery_duplicates(ctx, "default")
    assert len(groups) == 1 and len(groups[0].keys) == 2
    best_quality = max(ctx.db.faces.find({"_id": {"$in": groups[0].keys}}), key=lambda d: d["quality"]["score"])
    assert groups[0].best == best_quality["_id"]
    assert resolve_gallery_duplicates(ctx, "default", groups, actor="admin") == 1
    assert ctx.db.faces.count_documents({}) == 2
    assert len(list((ctx.settings.data_dir / "quarantine" / "default").iterdir())) == 1


def test_review_decisions_are_kept_and_respected(ctx: ServiceContext, lfw_image: Img) -> None:
    def add(name: str, ext: str, person: str, ns: tuple[int, ...]) -> str:
        imgs = [ImageInput(f"{person}{n}", lfw_image(person, n).read_bytes()) for n in ns]
        return enroll(ctx, PersonInput(name, ext), imgs).person_id

    powell_a, powell_b = (
        add("Colin Powell", "e1", "Colin_Powell", (1, 2)),
        add("C. Powell", "e2", "Colin_Powell", (3, 4)),
    )
    blair_a, blair_b = add("Tony Blair", "e3", "Tony_Blair", (1, 2)), add("T. Blair", "e4", "Tony_Blair", (3, 4))
    add("Serena Williams", "e5", "Serena_Williams", (1, 2))
    assert scan_identity_candidates(ctx, "default") == 2
    reviews = {frozenset(r.review.person_ids): r for r in open_reviews(ctx, "default")}
    assert set(reviews) == {frozenset({powell_a, powell_b}), frozenset({blair_a, blair_b})}
    powell = reviews[frozenset({powell_a, powell_b})]
    assert sorted(powell.names) == ["C. Powell", "Colin Powell"]
    decide_review(ctx, powell.review.id, "keep_separate", actor="admin")
    with pytest.raises(ServiceError, match="already decided"):
        decide_review(ctx, powell.review.id, "merge", actor="admin")
    blair = reviews[frozenset({blair_a, blair_b})]
    merged = decide_review(ctx, blair.review.id, "merge", actor="admin", keep_person=blair_a)
    assert merged["faces_moved"] == 2
    assert ctx.db.faces.count_documents({"person_id": blair_a}) == 4
    assert ctx.db.persons.find_one({"_id": blair_b}) is None
    kept = list(ctx.db.faces.find({"person_id": blair_a}))
    assert all(Path(d[k]).is_file() for d in kept for k in ("image_path", "chip_path"))
    assert all(Path(d["image_path"]).parent == ctx.images.person_dir("default", blair_a) for d in kept)
    assert not ctx.images.person_dir("default", blair_b).exists()
    # A rescan queues nothing new: the kept-separate pair stays decided, the merged pair is one person.
    assert scan_identity_candidates(ctx, "default") == 0
    assert open_reviews(ctx, "default") == []
    assert ctx.db.dedup_reviews.find_one({"_id": powell.review.id})["status"] == "kept_separate"
    # The merge decision is kept too, though the merged person (named in it) was erased.
    assert ctx.db.dedup_reviews.find_one({"_id": blair.review.id})["status"] == "merged"

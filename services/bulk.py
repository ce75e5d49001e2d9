"""Bulk registration from a folder of `<person>/<images>`: the plan, what is already done, the summary."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.context import ServiceContext
from services.dedup import IMAGE_SUFFIXES
from services.records import utcnow


@dataclass(frozen=True, slots=True)
class PersonPlan:
    folder: str
    external_id: str
    enroll: list[Path]
    probes: list[Path]


def plan_folder(root: Path, gallery: str, enroll_per_person: int) -> list[PersonPlan]:
    """Each sub-folder is a person; the first N images (sorted) enroll them, the rest are probes."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of <person>/<images>")
    plans = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            continue
        n = len(images) if enroll_per_person == 0 else enroll_per_person
        plans.append(PersonPlan(folder.name, f"{gallery}/{folder.name}", images[:n], images[n:]))
    return plans


def select_persons(plans: list[PersonPlan], min_images: int = 1, max_persons: int = 0) -> list[PersonPlan]:
    """Persons with at least `min_images` images; at most `max_persons` of them (0: all), spread evenly
    over the sorted folder so a sample is not just the names starting with A."""
    plans = [p for p in plans if len(p.enroll) + len(p.probes) >= min_images]
    if 0 < max_persons < len(plans):
        step = len(plans) / max_persons
        plans = [plans[int(i * step)] for i in range(max_persons)]
    return plans


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def remaining(ctx: ServiceContext, gallery: str, plans: list[PersonPlan]) -> tuple[list[PersonPlan], int]:
    """The plans with images neither enrolled nor rejected before (a re-run resumes); and images skipped."""
    persons = {
        d["external_id"]: d["_id"]
        for d in ctx.db.persons.find({"external_id": {"$in": [p.external_id for p in plans]}}, {"external_id": 1})
    }
    done: set[tuple[str, str]] = {
        (d["person_id"], d["image_sha256"])
        for d in ctx.db.faces.find(
            {"gallery": gallery, "person_id": {"$in": list(persons.values())}}, {"person_id": 1, "image_sha256": 1}
        )
    }
    rejected = {d["_id"] for d in ctx.db.rejections.find({"gallery": gallery}, {"_id": 1})}
    todo, skipped = [], 0
    for plan in plans:
        pid = persons.get(plan.external_id)
        left = []
        for path in plan.enroll:
            sha = sha256_of(path)
            if (pid is not None and (pid, sha) in done) or rejection_id(gallery, plan.external_id, sha) in rejected:
                skipped += 1
            else:
                left.append(path)
        if left:
            todo.append(PersonPlan(plan.folder, plan.external_id, left, plan.probes))
    return todo, skipped


def rejection_id(gallery: str, external_id: str, sha: str) -> str:
    return f"{gallery}:{external_id}:{sha}"


def record_rejections(
    ctx: ServiceContext, gallery: str, external_id: str, rejected: list[dict[str, Any]], paths: dict[str, Path]
) -> None:
    """Remember images refused for a reason that will not change (no face, too small, low quality)."""
    for r in rejected:
        path = paths.get(r["name"])
        if path is None or r["reason"].startswith("StorageUnavailable"):
            continue  # a transient failure: the next run tries again
        sha = sha256_of(path)
        ctx.db.rejections.update_one(
            {"_id": rejection_id(gallery, external_id, sha)},
            {
                "$set": {
                    "gallery": gallery,
                    "external_id": external_id,
                    "path": str(path),
                    "reason": r["reason"],
                    "time": utcnow(),
                }
            },
            upsert=True,
        )


@dataclass(slots=True)
class BulkSummary:
    persons: int = 0
    faces_enrolled: int = 0
    already_enrolled: int = 0
    skipped_before: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0

    def add(self, result: dict[str, Any]) -> None:
        self.persons += 1
        self.faces_enrolled += int(result["enrolled"])
        self.already_enrolled += int(result["already_enrolled"])
        for img in result["images"]:
            if img["status"] == "rejected":
                self.rejected[img["reason"].split(":", 1)[0]] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "persons": self.persons,
            "faces_enrolled": self.faces_enrolled,
            "already_enrolled": self.already_enrolled,
            "skipped_before": self.skipped_before,
            "rejected": dict(self.rejected),
            "failures": self.failures[:50],
            "n_failures": len(self.failures),
            "seconds": round(self.seconds, 1),
            "images": self.images,
            "images_per_s": round(self.images / self.seconds, 2) if self.seconds else 0.0,
        }

"""Bulk registration from a folder of `<person>/<images>`: the plan, what is left to do, the summary.

Folder and file names stay paths for reading; wherever one is stored or reported it is printable text
(services.storage.input_paths.printable), so a name whose bytes are not UTF-8 never breaks a record, a message or a log.
Every enroll image is read once while planning (for its sha256), only under the allowed input roots: an
unreadable or refused file is a rejection there and is never submitted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.errors import FaceregError, error_info
from model.image_io import IMAGE_SUFFIXES
from services.context import ServiceContext
from services.errors import DuplicatePhoto, StorageUnavailable
from services.registry.enrollment import DuplicatePhotos
from services.registry.persons import PersonInput, existing_person, names_of
from services.storage.input_paths import InputRefused, OutsideInputRoots, printable, read_input
from services.storage.records import RejectionRecord, utcnow

# The codes of refusals that a change of settings or a later attempt may lift: not remembered as lasting.
TRANSIENT_CODES = frozenset({StorageUnavailable.code, InputRefused.code, OutsideInputRoots.code})
QUERY_CHUNK = 1000  # values of one `$in`


@dataclass(frozen=True, slots=True)
class PersonPlan:
    folder: str  # the folder's name as printable text
    external_id: str
    enroll: list[Path]
    probes: list[Path]
    sha256: dict[Path, str] = field(default_factory=dict)  # of the enroll images, once read while planning

    @property
    def display_name(self) -> str:
        return self.folder.replace("_", " ")


@dataclass(frozen=True, slots=True)
class Rejection:
    person: str  # external id
    image: str  # printable file name
    code: str  # the error's code (model.errors)
    reason: str  # its message


@dataclass(frozen=True, slots=True)
class Duplicate:
    person: str
    image: str
    already_enrolled_for: str


def plan_folder(root: Path, gallery: str, enroll_per_person: int) -> list[PersonPlan]:
    """Each sub-folder is a person; the first N images (sorted) enroll them (0: all), the rest are probes.

    Every entry with an image suffix counts, whatever it is (a symlink, a FIFO): planning refuses what
    cannot be read, with its reason."""
    if not root.is_dir():
        raise InputRefused(f"{printable(root)} is not a folder of <person>/<images>")
    plans = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
        if not images:
            continue
        n = len(images) if enroll_per_person == 0 else enroll_per_person
        name = printable(folder.name)
        plans.append(PersonPlan(name, f"{gallery}/{name}", images[:n], images[n:]))
    return plans


def select_persons(plans: list[PersonPlan], min_images: int = 1, max_persons: int = 0) -> list[PersonPlan]:
    """Persons with at least `min_images` images; at most `max_persons` of them (0: all), spread evenly
    over the sorted folder so a sample is not just the names starting with A."""
    plans = [p for p in plans if len(p.enroll) + len(p.probes) >= min_images]
    if 0 < max_persons < len(plans):
        step = len(plans) / max_persons
        plans = [plans[int(i * step)] for i in range(max_persons)]
    return plans


@dataclass(slots=True)
class Triage:
    """What is left to do, and what planning decided on its own."""

    todo: list[PersonPlan] = field(default_factory=list)
    skipped: int = 0  # images enrolled before
    refused: list[Rejection] = field(default_factory=list)  # refused now, never submitted (and recorded)
    rejected_before: list[Rejection] = field(default_factory=list)  # refused by an earlier run for good
    duplicates: list[Duplicate] = field(default_factory=list)  # photos also enrolled for another person


def triage(
    ctx: ServiceContext,
    gallery: str,
    plans: Sequence[PersonPlan],
    roots: Sequence[Path],
    duplicate_photos: DuplicatePhotos = "warn",
) -> Triage:
    """Read every enroll image under `roots` (a re-run resumes): each is refused (unreadable, outside the roots,
    a person that cannot be registered, with "refuse" a photo of another person), skipped (enrolled or
    rejected before), or left to do. A photo already enrolled for another person, or for an earlier person
    of this run, is reported; refusals are recorded."""
    out = Triage()
    persons, shas = _read(ctx, gallery, plans, roots, out)
    owners = _owners(ctx, gallery, set(shas.values()))
    names = names_of(ctx, {pid for pids in owners.values() for pid in pids})
    before = _rejected_before(ctx, {rejection_id(gallery, ext, sha) for (ext, _), sha in shas.items()})
    display = {p.external_id: p.display_name for p in plans}
    first_of: dict[str, str] = {}  # sha256 -> the first person (external id) of this run to enroll the photo
    for plan in (p for p in plans if p.external_id in persons):
        pid = persons[plan.external_id]
        left: dict[Path, str] = {}
        for path in (f for f in plan.enroll if (plan.external_id, f) in shas):
            sha, image = shas[(plan.external_id, path)], printable(path.name)
            rid = rejection_id(gallery, plan.external_id, sha)
            if pid is not None and pid in owners.get(sha, ()):
                out.skipped += 1
                continue
            if rid in before:
                earlier = before[rid]
                out.rejected_before.append(Rejection(plan.external_id, image, earlier.code, earlier.reason))
                continue
            first = first_of.get(sha, plan.external_id)
            others = sorted(names.get(o, o) for o in owners.get(sha, ()) if o != pid)
            owner = others[0] if others else (display[first] if first != plan.external_id else None)
            if owner is not None and duplicate_photos == "refuse":
                _refuse(ctx, gallery, out, plan, path, DuplicatePhoto(f"already enrolled for {owner}"), sha)
                continue
            if owner is not None:
                out.duplicates.append(Duplicate(plan.external_id, image, owner))
            first_of.setdefault(sha, plan.external_id)
            left[path] = sha
        if left:
            out.todo.append(PersonPlan(plan.folder, plan.external_id, list(left), plan.probes, left))
    return out


def _read(
    ctx: ServiceContext, gallery: str, plans: Sequence[PersonPlan], roots: Sequence[Path], out: Triage
) -> tuple[dict[str, str | None], dict[tuple[str, Path], str]]:
    """Each registrable plan's person id (None: not registered yet), and the sha256 of each readable image;
    the rest refused into `out`."""
    persons: dict[str, str | None] = {}
    shas: dict[tuple[str, Path], str] = {}
    for plan in plans:
        try:
            person = existing_person(ctx, PersonInput(plan.display_name, plan.external_id))
        except FaceregError as exc:  # a name that cannot be a person's: each image says why
            for path in plan.enroll:
                _refuse(ctx, gallery, out, plan, path, exc)
            continue
        persons[plan.external_id] = person.id if person else None
        for path in plan.enroll:
            try:
                data = read_input(path, roots, ctx.settings.max_image_bytes)
            except FaceregError as exc:
                _refuse(ctx, gallery, out, plan, path, exc)
                continue
            shas[(plan.external_id, path)] = hashlib.sha256(data).hexdigest()
    return persons, shas


def _refuse(
    ctx: ServiceContext,
    gallery: str,
    out: Triage,
    plan: PersonPlan,
    path: Path,
    exc: FaceregError,
    sha: str | None = None,
) -> None:
    info = error_info(exc)
    refusal = Rejection(plan.external_id, printable(path.name), info.code, info.message)
    out.refused.append(refusal)
    record_rejection(ctx, gallery, refusal, path, sha)


def _in_chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(values), QUERY_CHUNK):
        yield list(values[i : i + QUERY_CHUNK])


def _owners(ctx: ServiceContext, gallery: str, shas: set[str]) -> dict[str, set[str]]:
    """sha256 -> the persons of the gallery that have a face of that photo."""
    out: dict[str, set[str]] = {}
    for chunk in _in_chunks(sorted(shas)):
        query = {"gallery": gallery, "image_sha256": {"$in": chunk}}
        for d in ctx.db.faces.find(query, {"person_id": 1, "image_sha256": 1}):
            out.setdefault(d["image_sha256"], set()).add(d["person_id"])
    return out


def _rejected_before(ctx: ServiceContext, ids: set[str]) -> dict[str, RejectionRecord]:
    """The rejections recorded before under these ids, by id."""
    out: dict[str, RejectionRecord] = {}
    for chunk in _in_chunks(sorted(ids)):
        for d in ctx.db.rejections.find({"_id": {"$in": chunk}}):
            stored = RejectionRecord.from_doc(d)
            out[stored.id] = stored
    return out


def rejection_id(gallery: str, external_id: str, sha: str) -> str:
    return f"{gallery}:{external_id}:{sha}"


def record_rejection(ctx: ServiceContext, gallery: str, r: Rejection, path: Path | None, sha: str | None) -> None:
    """Remember a rejection. Keyed by the image's sha256 when known (a re-run skips it for good); else by
    the file name (informational: planning refuses that file again)."""
    rid = rejection_id(gallery, r.person, sha) if sha else f"{gallery}:{r.person}:file:{r.image}"
    path_text = None if path is None else printable(path)
    doc = RejectionRecord(rid, gallery, r.person, r.image, r.reason, r.code, utcnow(), path_text).to_doc()
    # $set: a rejection recorded again without a path keeps the path it was first recorded with.
    ctx.db.rejections.update_one({"_id": doc.pop("_id")}, {"$set": doc}, upsert=True)


def record_rejections(
    ctx: ServiceContext, gallery: str, plan: PersonPlan, rejected: list[dict[str, Any]], paths: dict[str, Path]
) -> None:
    """Remember the images a task refused for a reason that will not change (no face, too small, low quality).

    `paths`: the plan's images by the name their payload carried; an image whose sha256 planning did not
    read is not remembered (nothing is read here)."""
    for r in rejected:
        path = paths.get(r["name"])
        sha = plan.sha256.get(path) if path is not None else None
        if path is None or sha is None or r["code"] in TRANSIENT_CODES:
            continue  # a transient failure: the next run tries again
        record_rejection(ctx, gallery, Rejection(plan.external_id, r["name"], r["code"], r["reason"]), path, sha)


@dataclass(slots=True)
class BulkSummary:
    persons: int = 0
    faces_enrolled: int = 0
    already_enrolled: int = 0
    skipped_before: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by error code
    rejections: list[Rejection] = field(default_factory=list)
    rejected_before: list[Rejection] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0

    def add(self, result: dict[str, Any]) -> None:
        """One person's enrollment result (with its `external_id`)."""
        self.persons += result.get("person_id") is not None
        self.faces_enrolled += int(result["enrolled"])
        self.already_enrolled += int(result["already_enrolled"])
        for img in result["images"]:
            if img["status"] == "rejected":
                self.reject(Rejection(str(result.get("external_id", "?")), img["name"], img["code"], img["reason"]))

    def reject(self, r: Rejection) -> None:
        self.rejected[r.code] += 1
        self.rejections.append(r)

    def take(self, planned: Triage) -> None:
        """What planning decided: skips, refusals, rejections of earlier runs, duplicates."""
        self.skipped_before += planned.skipped
        for r in planned.refused:
            self.reject(r)
        self.rejected_before += planned.rejected_before
        self.duplicates += planned.duplicates

    @property
    def complete(self) -> bool:
        """Every image of the run is in the gallery, enrolled now or before."""
        return not (self.rejections or self.rejected_before or self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "persons": self.persons,
            "faces_enrolled": self.faces_enrolled,
            "already_enrolled": self.already_enrolled,
            "skipped_before": self.skipped_before,
            "rejected": dict(self.rejected),
            "n_rejected": len(self.rejections),
            "rejected_before": len(self.rejected_before),
            "duplicate_photos": len(self.duplicates),
            "failures": self.failures[:50],
            "n_failures": len(self.failures),
            "seconds": round(self.seconds, 1),
            "images": self.images,
            "images_per_s": round(self.images / self.seconds, 2) if self.seconds else 0.0,
        }

    def details(self) -> dict[str, list[dict[str, str]]]:
        """Every rejected image (now and before) and every duplicate photo, for the report file."""
        return {
            "rejections": [asdict(r) for r in self.rejections],
            "rejections_before": [asdict(r) for r in self.rejected_before],
            "duplicates": [asdict(d) for d in self.duplicates],
        }

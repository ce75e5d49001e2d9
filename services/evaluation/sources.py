"""Where a Top-K gallery evaluation gets its enroll/probe split: a split CSV, a folder of
`<person>/<images>` (an uploaded zip is unpacked into one), or an existing gallery with a holdout."""

from __future__ import annotations

import zipfile
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from model.errors import InvalidImage
from model.evaluation.protocols import DatasetError, parse_csv
from model.image_io import IMAGE_SUFFIXES
from services.context import ServiceContext
from services.evaluation.gallery import SplitRow, input_roots, rows_from_csv
from services.registry.bulk import plan_folder, select_persons
from services.registry.galleries import get_gallery
from services.registry.persons import names_of
from services.storage.input_paths import printable, read_input, resolve_folder

MAX_ZIP_MEMBERS = 50_000
MAX_ZIP_BYTES = 4 * 1024**3  # uncompressed
MAX_SPLIT_CSV_BYTES = 64 * 1024**2


def folder_rows(root: Path, enroll_per_person: int, max_persons: int = 0) -> list[SplitRow]:
    """The first N images of each person enroll them, the rest are probes (persons with one image only enroll).

    With `max_persons`, only that many persons (spread evenly over the sorted folder) take part.
    """
    if enroll_per_person < 1:
        raise DatasetError("an evaluation needs at least one enroll image per person")
    plans = select_persons(plan_folder(root, "eval", enroll_per_person), max_persons=max_persons)
    rows = []
    for plan in plans:
        identity = printable(plan.folder)  # stored: UTF-8-safe whatever the folder's name
        rows += [SplitRow(str(p.relative_to(root)), identity, "enroll") for p in plan.enroll]
        rows += [SplitRow(str(p.relative_to(root)), identity, "probe") for p in plan.probes]
    if not any(r.role == "probe" for r in rows):
        raise DatasetError(
            f"{printable(root)}: no person has more than {enroll_per_person} image(s), so nothing is left to probe"
        )
    return rows


def gallery_rows(ctx: ServiceContext, gallery: str, enroll_per_person: int) -> list[SplitRow]:
    """A holdout of an existing gallery: each person's oldest N stored photos enroll, the newer ones probe.

    Paths are absolute (the root is "/"); identities are "name #id" so two people of one name stay apart.
    """
    get_gallery(ctx, gallery)
    by_person: dict[str, list[str]] = defaultdict(list)
    for d in ctx.db.faces.find({"gallery": gallery}, {"person_id": 1, "image_path": 1}).sort("created_at", 1):
        by_person[d["person_id"]].append(d["image_path"])
    names = names_of(ctx, set(by_person))
    rows = []
    for pid, paths in by_person.items():
        identity = f"{names.get(pid, '?')} #{pid[:8]}"
        rows += [SplitRow(p, identity, "enroll" if i < enroll_per_person else "probe") for i, p in enumerate(paths)]
    if not any(r.role == "probe" for r in rows):
        raise DatasetError(f"gallery {gallery!r}: nobody has more than {enroll_per_person} face(s) to hold out")
    return rows


def split_rows(path: str, roots: list[Path]) -> list[SplitRow]:
    """The rows of a split CSV read only under `roots` (OutsideInputRoots otherwise)."""
    try:
        data = read_input(path, roots, MAX_SPLIT_CSV_BYTES)
    except InvalidImage as exc:  # missing, or over the size cap: not an image, a dataset problem
        raise DatasetError(f"split CSV {exc}") from None
    return rows_from_csv(parse_csv(data, printable(path), ("path", "identity", "role")))


def rows_for(ctx: ServiceContext, source: dict[str, Any]) -> tuple[Path, list[SplitRow]]:
    """(root, rows) of a source `{"kind": "csv"|"folder"|"gallery", ...}` as the dashboard and tasks send it.

    A csv or folder source is read only under the input roots (OutsideInputRoots otherwise); each of its
    images is checked again when it is read (`gallery_evaluation.read_row`)."""
    kind = source.get("kind")
    n = int(source.get("enroll_per_person", 1))
    roots = input_roots(ctx)
    if kind == "csv":
        return resolve_folder(source["root"], roots), split_rows(source["split_csv"], roots)
    if kind == "folder":
        root = resolve_folder(source["root"], roots)
        return root, folder_rows(root, n, int(source.get("max_persons", 0)))
    if kind == "gallery":
        return Path("/"), gallery_rows(ctx, str(source["gallery"]), n)
    raise DatasetError(f"unknown evaluation source {kind!r} (csv, folder or gallery)")


def extract_zip(archive: Path, dest: Path) -> Path:
    """Unpack the images of an uploaded zip safely and return the folder that holds the person folders.

    Refused: paths leaving `dest`, more than MAX_ZIP_MEMBERS entries, more than MAX_ZIP_BYTES unpacked.
    Other files than images are skipped.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{archive.name} is not a zip file") from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise DatasetError(f"the zip holds {len(members)} files; at most {MAX_ZIP_MEMBERS} are accepted")
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise DatasetError(f"the zip unpacks to more than {MAX_ZIP_BYTES // 1024**3} GB")
        dest.mkdir(parents=True, exist_ok=True)
        for m in members:
            rel = PurePosixPath(m.filename)
            if rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(f"the zip entry {m.filename!r} points outside the archive")
            if rel.suffix.lower() not in IMAGE_SUFFIXES or rel.name.startswith("."):
                continue
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src:
                target.write_bytes(src.read())
    return _person_root(dest)


def _person_root(folder: Path) -> Path:
    """Descend through single wrapping folders (`lfw/images/<person>` zipped as a whole)."""
    while True:
        subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        files = [p for p in folder.iterdir() if p.is_file()]
        if len(subdirs) == 1 and not files and any(q.is_dir() for q in subdirs[0].iterdir()):
            folder = subdirs[0]
            continue
        if not subdirs:
            raise DatasetError("the zip holds no <person>/<images> folders")
        return folder

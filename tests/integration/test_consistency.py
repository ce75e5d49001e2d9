"""Crash consistency: a process killed between the MongoDB and Chroma writes, then `reconcile`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.pipeline import FacePipeline
from services.config import Settings
from services.context import ServiceContext, open_context
from services.registry.consistency import reconcile
from services.registry.galleries import get_gallery
from services.storage.faults import CRASH_EXIT_CODE
from tests.integration.conftest import isolated_settings, run_python

CHILD = """
import sys
from pathlib import Path
from services.config import Settings
from services.context import open_context
from services.registry.enrollment import ImageInput, enroll
from services.registry.erasure import erase_person
from services.registry.persons import PersonInput, find_by_external_id

ctx = open_context(Settings())
if sys.argv[1] == "enroll":
    images = [ImageInput(Path(p).name, Path(p).read_bytes()) for p in sys.argv[2:]]
    enroll(ctx, PersonInput("Tony Blair", "tb"), images)
else:
    erase_person(ctx, find_by_external_id(ctx, "tb").id)
"""


def run_child(settings: Settings, crash_at: str | None, *args: str) -> int:
    crash = {"FACEREG_CRASH_AT": crash_at} if crash_at else {}
    proc = run_python(settings, ["-c", CHILD, *args], timeout=300, **crash)
    assert proc.returncode in (0, CRASH_EXIT_CODE), proc.stderr
    return proc.returncode


def assert_consistent(ctx: ServiceContext) -> set[str]:
    """Every live record indexed and projected, no vector without a record; returns the face ids."""
    g = get_gallery(ctx, "default")
    records = {d["_id"] for d in ctx.db.faces.find({"gallery": "default"})}
    assert ctx.db.faces.count_documents({"vector_state": {"$ne": "indexed"}}) == 0
    assert ctx.index.ids(g.collection) == records
    return records


def images(lfw: Path) -> list[str]:
    return [str(lfw / "images" / "Tony_Blair" / f"Tony_Blair_{n:04d}.jpg") for n in (1, 2, 3)]


@pytest.mark.parametrize("point", ["after_mongo_pending", "after_chroma_upsert", "after_mongo_indexed"])
def test_a_crash_during_enrollment_is_repaired_without_loss_or_duplicates(
    point: str, infra: Settings, tmp_path: Path, lfw: Path, mfn: FacePipeline
) -> None:
    settings = isolated_settings(infra, tmp_path)
    assert run_child(settings, point, "enroll", *images(lfw)) == CRASH_EXIT_CODE
    ctx = open_context(settings, mfn)
    report = reconcile(ctx, "default")
    assert report.pending_projected == (0 if point == "after_mongo_indexed" else 3)
    assert len(assert_consistent(ctx)) == 3
    # Running the interrupted enrollment again completes it and adds nothing.
    assert run_child(settings, None, "enroll", *images(lfw)) == 0
    assert len(assert_consistent(ctx)) == 3
    assert ctx.db.persons.count_documents({}) == 1


@pytest.mark.parametrize("point", ["after_mongo_deleting", "after_chroma_delete"])
def test_a_crash_during_erasure_is_finished_by_reconcile(
    point: str, infra: Settings, tmp_path: Path, lfw: Path, mfn: FacePipeline
) -> None:
    settings = isolated_settings(infra, tmp_path)
    assert run_child(settings, None, "enroll", *images(lfw)) == 0
    files = [Path(d["image_path"]) for d in open_context(settings, mfn).db.faces.find()]
    assert run_child(settings, point, "erase") == CRASH_EXIT_CODE
    ctx = open_context(settings, mfn)
    assert reconcile(ctx, "default").deletions_finished == 3
    assert assert_consistent(ctx) == set()
    assert not any(f.exists() for f in files)
    assert run_child(settings, None, "erase") == 0  # the erasure itself can be re-run to its end
    assert ctx.db.persons.count_documents({}) == 0


def test_reconcile_removes_orphan_vectors_and_restores_missing_ones(
    infra: Settings, tmp_path: Path, lfw: Path, mfn: FacePipeline
) -> None:
    settings = isolated_settings(infra, tmp_path)
    assert run_child(settings, None, "enroll", *images(lfw)) == 0
    ctx = open_context(settings, mfn)
    g = get_gallery(ctx, "default")
    ids = sorted(assert_consistent(ctx))
    ctx.index.delete(g.collection, ids[:1])  # a record without its vector
    stray = np.ones((1, g.dim), np.float32) / np.sqrt(g.dim)
    ctx.index.upsert(g.collection, ["orphan-face"], stray, ["nobody"])  # a vector without a record
    report = reconcile(ctx, "default")
    assert (report.missing_vectors_restored, report.orphan_vectors_deleted) == (1, 1)
    assert sorted(assert_consistent(ctx)) == ids
    assert reconcile(ctx, "default").repaired == 0

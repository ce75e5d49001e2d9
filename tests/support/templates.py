"""The templates a gallery must hold, computed here from its face records (an oracle independent of the code)."""

from __future__ import annotations

import numpy as np

from services.context import ServiceContext
from services.registry.galleries import get_gallery
from services.storage.records import vector_from_bytes
from services.storage.templates import template_collection


def expected_templates(ctx: ServiceContext, gallery: str) -> dict[str, np.ndarray]:
    """Per person with live faces: the unit, quality-weighted (floored at 0.05) mean of their unit face vectors."""
    sums: dict[str, np.ndarray] = {}
    for d in ctx.db.faces.find({"gallery": gallery, "vector_state": {"$ne": "deleting"}}):
        v = vector_from_bytes(d["vector"])
        w = min(max(float(d["quality"]["score"]), 0.05), 1.0)
        sums[d["person_id"]] = sums.get(d["person_id"], 0.0) + w * v / np.linalg.norm(v)
    return {p: s / np.linalg.norm(s) for p, s in sums.items()}


def assert_templates_true(ctx: ServiceContext, gallery: str) -> dict[str, np.ndarray]:
    """The stored templates are exactly those of the face records, and nobody else has one."""
    name = template_collection(get_gallery(ctx, gallery).collection)
    wanted = expected_templates(ctx, gallery)
    assert ctx.index.ids(name) == set(wanted)
    stored = ctx.index.vectors(name, sorted(wanted))
    for person, vector in wanted.items():
        np.testing.assert_allclose(stored[person], vector, atol=1e-5, err_msg=f"template of {person}")
    return wanted

"""Galleries: a name bound to one embedding contract, with its 1:1 and 1:N thresholds."""

from __future__ import annotations

import re
from typing import Any

from model.pipeline import FacePipeline
from services.context import ServiceContext
from services.engine import verify_threshold
from services.errors import ContractMismatch, ServiceError
from services.storage.records import Gallery, set_or_raise, utcnow
from services.storage.vector_index import collection_name

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,38}[a-z0-9]$")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ServiceError(
            f"gallery name {name!r} is not valid: 3-40 characters of a-z, 0-9, '-' and '_', starting and ending "
            "with a letter or digit"
        )
    return name


def get_gallery(ctx: ServiceContext, name: str) -> Gallery:
    return Gallery.get(ctx.db.galleries, name, f"gallery {name!r}")


def list_galleries(ctx: ServiceContext) -> list[Gallery]:
    return [Gallery.from_doc(d) for d in ctx.db.galleries.find().sort("_id")]


def default_thresholds(ctx: ServiceContext, pipeline: FacePipeline) -> tuple[float, float]:
    """(1:1, 1:N) thresholds of a new gallery: the settings when given, else the model's calibrated ones."""
    identify = ctx.settings.identify_threshold
    spec_identify = pipeline.spec.identify_threshold
    return verify_threshold(ctx.settings, pipeline), spec_identify if identify is None else identify


def ensure_gallery(ctx: ServiceContext, name: str, pipeline: FacePipeline | None = None) -> Gallery:
    """The gallery, created for the pipeline's contract when new; refused when the contract differs."""
    pipeline = pipeline or ctx.pipeline
    check_name(name)
    doc = ctx.db.galleries.find_one({"_id": name})
    if doc is not None:
        gallery = Gallery.from_doc(doc)
        check_contract(gallery, pipeline)
        return gallery
    now = utcnow()
    verify, identify = default_thresholds(ctx, pipeline)
    contract = pipeline.contract
    gallery = Gallery(
        name=name,
        contract=contract.id,
        model=contract.model,
        dim=contract.dim,
        collection=collection_name(name, contract.id),
        verify_threshold=verify,
        identify_threshold=identify,
        created_at=now,
        updated_at=now,
    )
    # Two enrollments racing to create the gallery: the second insert is a no-op.
    ctx.db.galleries.update_one({"_id": name}, {"$setOnInsert": gallery.to_doc()}, upsert=True)
    return get_gallery(ctx, name)


def check_contract(gallery: Gallery, pipeline: FacePipeline) -> None:
    current = pipeline.contract
    if gallery.contract != current.id:
        raise ContractMismatch(
            f"gallery {gallery.name!r} holds {gallery.model} vectors (contract {gallery.contract}) but the current "
            f"model is {current.model} (contract {current.id}); vectors of different models cannot be compared. "
            f"Use FACEREG_MODEL={gallery.model}, or re-embed the gallery with "
            f"`python scripts/reindex.py {gallery.name} --model {current.model}`"
        )


def set_thresholds(
    ctx: ServiceContext,
    name: str,
    *,
    verify: float | None = None,
    identify: float | None = None,
    calibration: dict[str, Any] | None = None,
) -> Gallery:
    update: dict[str, Any] = {"updated_at": utcnow()}
    if verify is not None:
        update["verify_threshold"] = float(verify)
    if identify is not None:
        update["identify_threshold"] = float(identify)
    if calibration is not None:
        update["calibration"] = calibration
    set_or_raise(ctx.db.galleries, name, update, f"gallery {name!r}")
    return get_gallery(ctx, name)

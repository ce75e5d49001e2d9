"""Jobs: long work with a state, progress counts and a small JSON result, kept in MongoDB."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal

from services.storage.records import find_or_raise, utcnow

if TYPE_CHECKING:  # the context is built from storage: storage names it for types only
    from services.context import ServiceContext

JobState = Literal["queued", "running", "done", "failed", "cancelled"]


def create_job(
    ctx: ServiceContext, kind: str, params: dict[str, Any], actor: str = "system", job_id: str | None = None
) -> str:
    jid = job_id or uuid.uuid4().hex
    now = utcnow()
    ctx.db.jobs.update_one(
        {"_id": jid},
        {
            "$setOnInsert": {
                "kind": kind,
                "params": params,
                "actor": actor,
                "state": "queued",
                "done": 0,
                "total": 0,
                "result": None,
                "error": None,
                "created_at": now,
                "updated_at": now,
            }
        },
        upsert=True,
    )
    return jid


def set_progress(ctx: ServiceContext, job_id: str, done: int, total: int, state: JobState = "running") -> None:
    ctx.db.jobs.update_one(
        {"_id": job_id}, {"$set": {"done": done, "total": total, "state": state, "updated_at": utcnow()}}
    )


def finish_job(ctx: ServiceContext, job_id: str, result: dict[str, Any]) -> None:
    ctx.db.jobs.update_one({"_id": job_id}, {"$set": {"state": "done", "result": result, "updated_at": utcnow()}})


def fail_job(ctx: ServiceContext, job_id: str, error: str) -> None:
    ctx.db.jobs.update_one({"_id": job_id}, {"$set": {"state": "failed", "error": error, "updated_at": utcnow()}})


def get_job(ctx: ServiceContext, job_id: str) -> dict[str, Any]:
    return dict(find_or_raise(ctx.db.jobs, job_id, f"job {job_id}"))


def recent_jobs(ctx: ServiceContext, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    query = {} if kind is None else {"kind": kind}
    return [dict(d) for d in ctx.db.jobs.find(query).sort("created_at", -1).limit(limit)]

"""Jobs: long work with a state, progress counts and a small JSON result, kept in MongoDB as `Job` records."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from services.storage.records import Job, JobState, utcnow

if TYPE_CHECKING:  # the context is built from storage: storage names it for types only
    from services.context import ServiceContext


def create_job(
    ctx: ServiceContext, kind: str, params: dict[str, Any], actor: str = "system", job_id: str | None = None
) -> str:
    """A queued job (an existing one of the same id is kept as it is): its id."""
    jid = job_id or uuid.uuid4().hex
    now = utcnow()
    doc = Job(jid, kind, params, actor, "queued", 0, 0, None, None, now, now).to_doc()
    ctx.db.jobs.update_one({"_id": doc.pop("_id")}, {"$setOnInsert": doc}, upsert=True)
    return jid


def set_progress(ctx: ServiceContext, job_id: str, done: int, total: int, state: JobState = "running") -> None:
    ctx.db.jobs.update_one(
        {"_id": job_id}, {"$set": {"done": done, "total": total, "state": state, "updated_at": utcnow()}}
    )


def finish_job(ctx: ServiceContext, job_id: str, result: dict[str, Any]) -> None:
    ctx.db.jobs.update_one({"_id": job_id}, {"$set": {"state": "done", "result": result, "updated_at": utcnow()}})


def fail_job(ctx: ServiceContext, job_id: str, error: str) -> None:
    ctx.db.jobs.update_one({"_id": job_id}, {"$set": {"state": "failed", "error": error, "updated_at": utcnow()}})


def get_job(ctx: ServiceContext, job_id: str) -> Job:
    return Job.get(ctx.db.jobs, job_id, f"job {job_id}")


def recent_jobs(ctx: ServiceContext, kind: str | None = None, limit: int = 20) -> list[Job]:
    query = {} if kind is None else {"kind": kind}
    return [Job.from_doc(d) for d in ctx.db.jobs.find(query).sort("created_at", -1).limit(limit)]

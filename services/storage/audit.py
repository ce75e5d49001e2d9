"""The audit trail: who did what to which record, when (`AuditEntry` records)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo.collection import Collection

from services.storage.records import AuditEntry, utcnow

if TYPE_CHECKING:  # the context is built from storage: storage names it for types only
    from services.context import ServiceContext


def audit(ctx: ServiceContext, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> None:
    record(ctx.db.audit, actor, action, subject, details)


def record(
    trail: Collection[dict[str, Any]], actor: str, action: str, subject: str, details: dict[str, Any] | None = None
) -> None:
    """One audit entry in `trail` (the `audit` collection), for callers without a whole ServiceContext."""
    trail.insert_one(AuditEntry(utcnow(), actor, action, subject, details or {}).to_doc())


def audit_trail(ctx: ServiceContext, subject: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The latest entries first (of one subject, or of all)."""
    query = {} if subject is None else {"subject": subject}
    return [AuditEntry.from_doc(d) for d in ctx.db.audit.find(query, {"_id": 0}).sort("time", -1).limit(limit)]

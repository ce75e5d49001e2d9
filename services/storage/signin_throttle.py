"""Sign-in throttling that survives new browser sessions and restarts: failures are kept in MongoDB.

Failures are counted per user name and per client address. MAX_USER_FAILURES wrong passwords for one
name within WINDOW lock that name for LOCK (doubling with each lock that follows within REPEAT_WINDOW,
at most MAX_LOCK); an address that fails MAX_ADDRESS_FAILURES times within WINDOW, whatever the names
it tries, is locked the same way. Every function takes `now`, so the logic never reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from services.storage.db import Doc
from services.storage.records import as_utc

MAX_USER_FAILURES = 5
MAX_ADDRESS_FAILURES = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
MAX_LOCK = timedelta(hours=24)
REPEAT_WINDOW = timedelta(hours=24)  # a lock within this long after the last one lasts twice as long


@dataclass(frozen=True, slots=True)
class Lock:
    key: str  # "user:<name>" or "addr:<address>"
    until: datetime
    level: int  # 0 for a first lock; each repeat doubles its length

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def subject(self) -> str:
        return self.key.split(":", 1)[1]


class SigninThrottle:
    """Failures and locks in two MongoDB collections of the facereg database."""

    def __init__(self, db: Database[Doc]) -> None:
        # Their indexes, and the TTL that drops failures after a day, are in services.storage.db.INDEXES.
        self.failures: Collection[Doc] = db["signin_failures"]
        self.locks: Collection[Doc] = db["signin_locks"]

    def active_lock(self, name: str, address: str, now: datetime) -> Lock | None:
        """The lock that refuses this name or this address now, the later-ending one if both."""
        found = [lock for key in (user_key(name), addr_key(address)) if (lock := self._lock(key, now))]
        return max(found, key=lambda lock: lock.until) if found else None

    def record_failure(self, name: str, address: str, now: datetime) -> Lock | None:
        """Count a wrong password; the lock it starts, if it reached a limit."""
        started = None
        for key, limit in ((user_key(name), MAX_USER_FAILURES), (addr_key(address), MAX_ADDRESS_FAILURES)):
            self.failures.insert_one({"key": key, "time": now})
            if self._recent_failures(key, now) >= limit:
                started = self._lock_key(key, now) or started
        return started

    def record_success(self, name: str, now: datetime) -> None:
        """A correct sign-in clears the name's failures (its lock history stays for the doubling)."""
        self.failures.delete_many({"key": user_key(name), "time": {"$lte": now}})

    def unlock(self, name: str) -> bool:
        """Lift a user name's lock and forget its failures; True when there was a lock."""
        key = user_key(name)
        self.failures.delete_many({"key": key})
        return self.locks.update_one({"_id": key, "until": {"$ne": None}}, {"$set": {"until": None}}).modified_count > 0

    def current_locks(self, now: datetime) -> list[Lock]:
        return [
            Lock(d["_id"], as_utc(d["until"]), int(d.get("level", 0)))
            for d in self.locks.find({"until": {"$gt": now}}).sort("until", ASCENDING)
        ]

    def _lock(self, key: str, now: datetime) -> Lock | None:
        doc = self.locks.find_one({"_id": key, "until": {"$gt": now}})
        return Lock(key, as_utc(doc["until"]), int(doc.get("level", 0))) if doc else None

    def _recent_failures(self, key: str, now: datetime) -> int:
        """Failures within WINDOW that came after the key's last lock ended (those before it were paid for)."""
        since = now - WINDOW
        last = self.locks.find_one({"_id": key})
        if last and last.get("locked_at") and as_utc(last["locked_at"]) > since:
            since = as_utc(last["locked_at"])
        return self.failures.count_documents({"key": key, "time": {"$gt": since, "$lte": now}})

    def _lock_key(self, key: str, now: datetime) -> Lock | None:
        if self._lock(key, now) is not None:
            return None  # already locked: the failure is counted, the lock is not extended
        last = self.locks.find_one({"_id": key})
        repeat = last is not None and as_utc(last["locked_at"]) > now - REPEAT_WINDOW
        level = int(last.get("level", 0)) + 1 if repeat and last else 0
        until = now + min(LOCK * 2**level, MAX_LOCK)
        self.locks.replace_one({"_id": key}, {"until": until, "locked_at": now, "level": level}, upsert=True)
        return Lock(key, until, level)


def user_key(name: str) -> str:
    return f"user:{name}"


def addr_key(address: str) -> str:
    return f"addr:{address}"

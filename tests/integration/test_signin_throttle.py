"""Sign-in throttling on the real MongoDB-protocol server, with explicit times (no wall clock)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services.config import Settings
from services.storage.db import connect
from services.storage.signin_throttle import (
    LOCK,
    MAX_ADDRESS_FAILURES,
    MAX_USER_FAILURES,
    WINDOW,
    SigninThrottle,
)

T0 = datetime(2026, 3, 10, 23, 55, tzinfo=UTC)  # a lock that crosses midnight UTC


@pytest.fixture
def throttle(infra: Settings) -> Iterator[SigninThrottle]:
    base = infra.mongo_uri.rsplit("/", 1)[0]
    db = connect(f"{base}/throttle{uuid.uuid4().hex[:10]}")
    yield SigninThrottle(db)
    db.client.drop_database(db.name)


def fail(throttle: SigninThrottle, n: int, name: str = "alice", address: str = "10.0.0.1", start: datetime = T0):
    lock = None
    for i in range(n):
        lock = throttle.record_failure(name, address, start + timedelta(seconds=i)) or lock
    return lock


def test_five_failures_lock_the_name_for_fifteen_minutes(throttle: SigninThrottle) -> None:
    assert fail(throttle, MAX_USER_FAILURES - 1) is None
    assert throttle.active_lock("alice", "10.0.0.9", T0 + timedelta(seconds=10)) is None
    lock = throttle.record_failure("alice", "10.0.0.2", T0 + timedelta(seconds=10))
    assert lock is not None and lock.key == "user:alice" and lock.until == T0 + timedelta(seconds=10) + LOCK
    # Locked whatever the address; another name is not.
    assert throttle.active_lock("alice", "192.0.2.7", T0 + timedelta(minutes=14)) == lock
    assert throttle.active_lock("bob", "192.0.2.7", T0 + timedelta(minutes=14)) is None
    assert throttle.active_lock("alice", "192.0.2.7", lock.until) is None  # expired
    assert [lk.key for lk in throttle.current_locks(T0 + timedelta(minutes=1))] == ["user:alice"]


def test_failures_outside_the_window_do_not_add_up(throttle: SigninThrottle) -> None:
    fail(throttle, MAX_USER_FAILURES - 1)
    assert fail(throttle, 1, start=T0 + WINDOW + timedelta(seconds=5)) is None


def test_a_repeated_lock_lasts_twice_as_long(throttle: SigninThrottle) -> None:
    first = fail(throttle, MAX_USER_FAILURES)
    assert first is not None
    second = fail(throttle, MAX_USER_FAILURES, start=first.until + timedelta(seconds=1))
    assert second is not None and second.level == 1
    assert second.until - (first.until + timedelta(seconds=MAX_USER_FAILURES)) == 2 * LOCK


def test_failures_while_locked_do_not_extend_the_lock(throttle: SigninThrottle) -> None:
    lock = fail(throttle, MAX_USER_FAILURES)
    assert lock is not None
    assert fail(throttle, 3, start=T0 + timedelta(minutes=1)) is None
    assert throttle.active_lock("alice", "x", T0 + timedelta(minutes=1)) == lock


def test_success_clears_failures_and_unlock_lifts_a_lock(throttle: SigninThrottle) -> None:
    fail(throttle, MAX_USER_FAILURES - 1)
    throttle.record_success("alice", T0 + timedelta(minutes=1))
    assert fail(throttle, 1, start=T0 + timedelta(minutes=2)) is None
    lock = fail(throttle, MAX_USER_FAILURES, start=T0 + timedelta(minutes=3))
    assert lock is not None
    assert throttle.unlock("alice") is True
    assert throttle.active_lock("alice", "10.0.0.1", T0 + timedelta(minutes=4)) is None
    assert throttle.unlock("alice") is False


def test_an_address_spraying_many_names_is_locked(throttle: SigninThrottle) -> None:
    lock = None
    for i in range(MAX_ADDRESS_FAILURES):
        lock = throttle.record_failure(f"user{i}", "203.0.113.5", T0 + timedelta(seconds=i)) or lock
    assert lock is not None and lock.key == "addr:203.0.113.5"
    assert throttle.active_lock("somebody", "203.0.113.5", T0 + timedelta(minutes=1)) == lock
    assert throttle.active_lock("somebody", "203.0.113.6", T0 + timedelta(minutes=1)) is None


def test_locks_survive_a_new_throttle_on_the_same_database(throttle: SigninThrottle) -> None:
    lock = fail(throttle, MAX_USER_FAILURES)
    again = SigninThrottle(throttle.locks.database)  # a restarted dashboard
    assert again.active_lock("alice", "x", T0 + timedelta(minutes=2)) == lock

"""The realtime script's clock: the real one, or one started at --start-time."""

from __future__ import annotations

from datetime import UTC, datetime

from scripts.realtime_attendance import _clock
from services.storage.records import utcnow


def test_a_start_time_is_the_first_reading_and_the_clock_runs_on_from_it() -> None:
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    clock = _clock(start)
    first, second = clock(), clock()
    assert first == start and start <= second < datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    assert _clock(None) is utcnow

"""Attendance scoring against a video's ground truth, on hand-made truths and events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from model.evaluation.protocols import DatasetError
from services.evaluation.attendance import TruthBox, TruthPerson, VideoTruth, Visit, VisitRef, score_attendance
from services.storage.records import AttendanceEvent

FPS = 10.0
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
# Ann comes, returns within the 8 s cooldown (frames 10 -> 80: 7 s), and again long after; Bob comes once;
# Zed, not enrolled, is in view with Ann's return.
TRUTH = VideoTruth(
    fps=FPS,
    frames=200,
    width=640,
    height=480,
    cooldown_s=8.0,
    seed=0,
    people=(
        TruthPerson(
            "Ann_Lee",
            True,
            ("/a/1.jpg",),
            "/a/0.jpg",
            (Visit(10, 40, True), Visit(60, 80, False), Visit(150, 180, True)),
        ),
        TruthPerson("Bob_Ray", True, ("/b/1.jpg",), "/b/0.jpg", (Visit(90, 120, True),)),
        TruthPerson("Zed_Kay", False, (), "/z/0.jpg", (Visit(55, 85, False),)),
    ),
    boxes=(TruthBox(10, "Ann_Lee", 10.0, 20.0, 60.0, 87.0), TruthBox(55, "Zed_Kay", 300.0, 20.0, 350.0, 87.0)),
)


def event(
    name: str | None, first: int, last: int, decided: int | None = None, person_id: str | None = None
) -> AttendanceEvent:
    """An event of the track over frames [first, last], logged at frame `decided` (default: first + 5)."""
    at = T0 + timedelta(seconds=(first + 5 if decided is None else decided) / FPS)
    pid = person_id if person_id is not None else (name.lower().replace(" ", "-") if name else None)
    return AttendanceEvent(
        id=f"e{first}-{name}",
        person_id=pid,
        display_name=name,
        source="door",
        time=at,
        similarity=0.8,
        snapshot_path=None,
        run_id="r1",
        track_id=first,
        first_frame=first,
        last_frame=last,
    )


PERFECT = [event("Ann Lee", 12, 40), event(None, 56, 84), event("Bob Ray", 90, 118), event("Ann Lee", 151, 179)]


def test_a_perfect_run_passes() -> None:
    score = score_attendance(TRUTH, PERFECT)
    assert (score.known_events, score.true_positives, score.false_positives) == (3, 3, 0)
    assert score.precision == score.recall == 1.0 and score.expected_visits == 3
    assert (score.unknown_visits, score.unknown_visits_with_one_event, score.unknown_events_total) == (1, 1, 1)
    assert not score.duplicates and not score.visits_missed
    assert score.failures() == []
    assert json.loads(json.dumps(score.to_dict()))["recall"] == 1.0


def test_a_missed_visit_lowers_recall() -> None:
    score = score_attendance(TRUTH, [e for e in PERFECT if e.display_name != "Bob Ray"])
    assert score.recall == pytest.approx(2 / 3) and score.precision == 1.0
    assert score.visits_missed == (VisitRef("Bob_Ray", 90, 120),)
    assert score.failures() == ["recall 0.667 < 0.95"]


def test_the_wrong_person_is_a_false_positive_and_a_miss() -> None:
    events = [event("Bob Ray", 12, 40), *PERFECT[1:]]
    score = score_attendance(TRUTH, events)
    assert (score.true_positives, score.false_positives, score.wrong_person) == (2, 1, 1)
    assert score.visits_missed == (VisitRef("Ann_Lee", 10, 40),)


def test_a_name_nobody_listed_is_a_wrong_person() -> None:
    score = score_attendance(TRUTH, [*PERFECT, event("Carl Ode", 100, 110)])
    assert score.wrong_person == 1 and score.precision == pytest.approx(3 / 4)


def test_duplicates_and_events_in_a_return_within_the_cooldown() -> None:
    second_track = event("Ann Lee", 25, 40, decided=30)  # the same visit, tracked twice
    in_return = event("Ann Lee", 62, 80)  # the return within the cooldown must not log
    score = score_attendance(TRUTH, [*PERFECT, second_track, in_return])
    assert score.true_positives == 3 and score.false_positives == 2
    assert score.repeated_in_visit == 1 and score.events_in_no_event_visits == 1
    assert [(d.name, d.seconds_apart) for d in score.duplicates] == [("Ann_Lee", 1.3), ("Ann_Lee", 3.7)]
    assert "2 duplicate(s) within the cooldown" in score.failures()


@pytest.mark.parametrize(("unknown", "passes"), [(0, False), (1, True), (2, False)])
def test_a_stranger_wants_exactly_one_unknown_event(unknown: int, passes: bool) -> None:
    tracks = [event(None, 56, 70), event(None, 72, 84)][:unknown]
    score = score_attendance(TRUTH, [e for e in PERFECT if e.person_id is not None] + tracks)
    assert score.unknown_visits_with_one_event == int(passes) and score.unknown_events_total == unknown
    assert (score.failures() == []) == passes


def test_a_known_event_for_a_stranger() -> None:
    score = score_attendance(TRUTH, [*PERFECT, event("Bob Ray", 82, 85)])  # only Zed is in view then
    assert score.known_events_for_strangers == 1 and score.wrong_person == 0
    assert "1 known event(s) for non-enrolled people" in score.failures()


def test_unknown_events_of_enrolled_people_and_of_nobody() -> None:
    score = score_attendance(TRUTH, [*PERFECT, event(None, 95, 110), event(None, 190, 195)])
    assert (score.unknown_events_on_enrolled, score.unknown_events_unmatched, score.unknown_events_total) == (1, 1, 3)
    assert score.failures() == []  # an enrolled person also logged as unknown costs nothing here


def test_person_ids_map_to_names() -> None:
    events = [event("A. Lee", 12, 40, person_id="p-17"), *PERFECT[1:]]
    assert score_attendance(TRUTH, events).true_positives == 2
    assert score_attendance(TRUTH, events, person_names={"p-17": "Ann_Lee"}).true_positives == 3
    by_external_id = [event("Ann_Lee", 12, 40), *PERFECT[1:]]
    assert score_attendance(TRUTH, by_external_id).true_positives == 3


def test_an_event_without_frames_is_refused() -> None:
    bare = AttendanceEvent("e", "ann-lee", "Ann Lee", "door", T0, 0.8, None)
    with pytest.raises(ValueError, match="no frame range"):
        score_attendance(TRUTH, [bare])


def test_truth_round_trip_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    TRUTH.save(path)
    assert VideoTruth.load(path) == TRUTH
    data = TRUTH.to_dict()
    data["boxes"].append([3, "Ann_Lee", 600.0, 20.0, 700.0, 80.0])  # past the right edge
    with pytest.raises(DatasetError, match="outside the video"):
        VideoTruth.from_dict(data)
    data = TRUTH.to_dict()
    data["people"][0]["visits"][1]["start"] = 30  # overlaps the visit before
    with pytest.raises(DatasetError, match="in order"):
        VideoTruth.from_dict(data)
    del data["fps"]
    with pytest.raises(DatasetError, match="KeyError"):
        VideoTruth.from_dict(data)
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="not a truth JSON"):
        VideoTruth.load(path)

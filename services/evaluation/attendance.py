"""Attendance accuracy on a video with ground truth: who is visible in which frames (a `VideoTruth`, written by
scripts/make_test_video.py) against the attendance events a run logged.

An event is matched to a visit by frame overlap (the event's track, [first_frame, last_frame], against the visit's
[start, end]) and by name (its display name is the LFW name with '_' as ' ', or `person_names` maps its person id
to the LFW name). A visit with `expect_event` wants exactly one known event of its person; a non-enrolled person's
visit wants exactly one unknown event and no known one; a return within the cooldown wants none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from model.evaluation.protocols import DatasetError

TRUTH_VERSION = 1


@dataclass(frozen=True, slots=True)
class Visit:
    """One stay of a person in view, frames inclusive."""

    start: int
    end: int
    expect_event: bool

    def overlap(self, first: int, last: int) -> int:
        """How many frames of [first, last] fall in this visit."""
        return max(0, min(self.end, last) - max(self.start, first) + 1)


@dataclass(frozen=True, slots=True)
class TruthPerson:
    name: str  # the LFW folder name: the external id of an enrolled person
    enrolled: bool
    enroll_images: tuple[str, ...]
    video_image: str
    visits: tuple[Visit, ...]

    @property
    def display_name(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True, slots=True)
class TruthBox:
    """A visible face in one frame: the box a detector would draw, in frame pixels."""

    frame: int
    name: str
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def size(self) -> float:
        """The shorter side, as `model.types.Detection.size` measures a face."""
        return min(self.x2 - self.x1, self.y2 - self.y1)


@dataclass(frozen=True, slots=True)
class VideoTruth:
    """The ground truth of a generated video (truth.json)."""

    fps: float
    frames: int
    width: int
    height: int
    cooldown_s: float
    seed: int
    people: tuple[TruthPerson, ...]
    boxes: tuple[TruthBox, ...]

    @classmethod
    def load(cls, path: Path) -> VideoTruth:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{path} is not a truth JSON file: {exc}") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Any, where: str = "truth") -> VideoTruth:
        try:
            if data["version"] != TRUTH_VERSION:
                raise DatasetError(f"{where}: version {data['version']!r} is not {TRUTH_VERSION}")
            people = tuple(
                TruthPerson(
                    name=str(p["name"]),
                    enrolled=bool(p["enrolled"]),
                    enroll_images=tuple(str(i) for i in p["enroll_images"]),
                    video_image=str(p["video_image"]),
                    visits=tuple(Visit(int(v["start"]), int(v["end"]), bool(v["expect_event"])) for v in p["visits"]),
                )
                for p in data["people"]
            )
            boxes = tuple(TruthBox(int(f), str(n), *(float(c) for c in xyxy)) for f, n, *xyxy in data["boxes"])
            truth = cls(
                fps=float(data["fps"]),
                frames=int(data["frames"]),
                width=int(data["width"]),
                height=int(data["height"]),
                cooldown_s=float(data["cooldown_s"]),
                seed=int(data["seed"]),
                people=people,
                boxes=boxes,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: not a valid truth ({type(exc).__name__}: {exc})") from None
        truth.validate(where)
        return truth

    def validate(self, where: str = "truth") -> None:
        """Raise DatasetError unless names are unique, visits lie in the video in order, boxes in the frame."""
        names = [p.name for p in self.people]
        if len(set(names)) != len(names):
            raise DatasetError(f"{where}: a person is listed twice")
        for person in self.people:
            previous_end = -1
            for visit in person.visits:
                if not previous_end < visit.start <= visit.end < self.frames:
                    raise DatasetError(f"{where}: {person.name}'s visits must be in order within 0..{self.frames - 1}")
                previous_end = visit.end
        known = set(names)
        for box in self.boxes:
            inside = 0 <= box.x1 < box.x2 <= self.width and 0 <= box.y1 < box.y2 <= self.height
            if box.name not in known or not 0 <= box.frame < self.frames or not inside:
                raise DatasetError(f"{where}: box {box} is outside the video or names nobody listed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": TRUTH_VERSION,
            "fps": self.fps,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "cooldown_s": self.cooldown_s,
            "seed": self.seed,
            "people": [
                {
                    "name": p.name,
                    "enrolled": p.enrolled,
                    "enroll_images": list(p.enroll_images),
                    "video_image": p.video_image,
                    "visits": [asdict(v) for v in p.visits],
                }
                for p in self.people
            ],
            "boxes": [[b.frame, b.name, b.x1, b.y1, b.x2, b.y2] for b in self.boxes],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")


class EventLike(Protocol):
    """What scoring reads of an attendance event (services.storage.records.AttendanceEvent has it)."""

    @property
    def person_id(self) -> str | None: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def time(self) -> datetime: ...
    @property
    def first_frame(self) -> int | None: ...
    @property
    def last_frame(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class VisitRef:
    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Two known events of one person closer in time than the cooldown."""

    name: str
    first: datetime
    second: datetime

    @property
    def seconds_apart(self) -> float:
        return (self.second - self.first).total_seconds()


@dataclass(frozen=True, slots=True)
class AttendanceScore:
    known_events: int
    true_positives: int  # known events that are the first of their person's visit with `expect_event`
    false_positives: int  # every other known event
    precision: float  # true_positives / known_events (1.0 when there are none)
    expected_visits: int  # visits with `expect_event`
    recall: float  # true_positives / expected_visits (1.0 when there are none)
    visits_missed: tuple[VisitRef, ...]
    wrong_person: int  # known events naming someone not in view then, or nobody listed
    known_events_for_strangers: int  # ... overlapping only a non-enrolled person's visit
    events_in_no_event_visits: int  # known events in a return within the cooldown
    repeated_in_visit: int  # a second (third ...) known event of the same person and visit
    duplicates: tuple[Duplicate, ...]  # known events of one person within the cooldown of the previous one
    unknown_visits: int  # visits of non-enrolled people
    unknown_visits_with_one_event: int
    unknown_events_total: int
    unknown_events_on_enrolled: int  # unknown events whose frames overlap an enrolled person's visit most
    unknown_events_unmatched: int  # unknown events overlapping no visit

    def failures(self, min_precision: float = 0.95, min_recall: float = 0.95) -> list[str]:
        """What misses issue 12's acceptance (an empty list: it passes)."""
        found = []
        if self.precision < min_precision:
            found.append(f"precision {self.precision:.3f} < {min_precision}")
        if self.recall < min_recall:
            found.append(f"recall {self.recall:.3f} < {min_recall}")
        if self.known_events_for_strangers:
            found.append(f"{self.known_events_for_strangers} known event(s) for non-enrolled people")
        if self.unknown_visits_with_one_event != self.unknown_visits:
            found.append(
                f"{self.unknown_visits - self.unknown_visits_with_one_event} of {self.unknown_visits} "
                "non-enrolled visits without exactly one unknown event"
            )
        if self.duplicates:
            found.append(f"{len(self.duplicates)} duplicate(s) within the cooldown")
        return found

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["visits_missed"] = [asdict(v) for v in self.visits_missed]
        out["duplicates"] = [
            {"name": d.name, "first": d.first.isoformat(), "second": d.second.isoformat(), "seconds": d.seconds_apart}
            for d in self.duplicates
        ]
        return out


def _resolve(person_id: str, display_name: str | None, truth: VideoTruth, names: Mapping[str, str]) -> str | None:
    """The LFW name a known event names: `names[person_id]`, else by its display name; None if nobody listed."""
    if person_id in names:
        return names[person_id]
    for person in truth.people:
        if display_name in (person.display_name, person.name):
            return person.name
    return None


def _frames(event: EventLike) -> tuple[int, int]:
    if event.first_frame is None or event.last_frame is None:
        raise ValueError(f"event of {event.display_name or 'an unknown face'} at {event.time} has no frame range")
    return event.first_frame, event.last_frame


def _best_visit(truth: VideoTruth, first: int, last: int) -> tuple[TruthPerson, Visit] | None:
    """The visit (of anyone) the frames overlap most; None if they overlap none."""
    best, most = None, 0
    for person in truth.people:
        for visit in person.visits:
            frames = visit.overlap(first, last)
            if frames > most:
                best, most = (person, visit), frames
    return best


def _duplicates(known: list[tuple[str, datetime]], cooldown_s: float) -> tuple[Duplicate, ...]:
    last_time: dict[str, datetime] = {}
    found = []
    for name, time in sorted(known, key=lambda item: item[1]):
        previous = last_time.get(name)
        if previous is not None and (time - previous).total_seconds() < cooldown_s:
            found.append(Duplicate(name, previous, time))
        last_time[name] = time
    return tuple(found)


def score_attendance(
    truth: VideoTruth, events: Sequence[EventLike], person_names: Mapping[str, str] | None = None
) -> AttendanceScore:
    """Score one run's events (all of them, of one source) against the truth. `person_names` maps a person id to
    the LFW name where display names alone do not say who an event is."""
    names = person_names or {}
    by_name = {p.name: p for p in truth.people}
    matched: dict[tuple[str, int], int] = {}  # (name, visit start) -> known events
    wrong = strangers = no_event = 0
    known: list[tuple[str, datetime]] = []
    unknown_per_visit: dict[tuple[str, int], int] = {}
    unknown_total = unknown_enrolled = unknown_unmatched = 0
    for event in sorted(events, key=lambda e: e.time):
        first, last = _frames(event)
        if event.person_id is None:
            unknown_total += 1
            best = _best_visit(truth, first, last)
            if best is None:
                unknown_unmatched += 1
            elif best[0].enrolled:
                unknown_enrolled += 1
            else:
                key = (best[0].name, best[1].start)
                unknown_per_visit[key] = unknown_per_visit.get(key, 0) + 1
            continue
        name = _resolve(event.person_id, event.display_name, truth, names)
        person = by_name.get(name) if name is not None else None
        own = [v for v in person.visits if v.overlap(first, last)] if person is not None else []
        if person is None or not own:
            best = _best_visit(truth, first, last)
            if best is not None and not best[0].enrolled:
                strangers += 1
            else:
                wrong += 1
            if person is not None:
                known.append((person.name, event.time))
            continue
        known.append((person.name, event.time))
        visit = max(own, key=lambda v: v.overlap(first, last))
        if not visit.expect_event or not person.enrolled:
            no_event += int(person.enrolled)
            strangers += int(not person.enrolled)
            continue
        key = (person.name, visit.start)
        matched[key] = matched.get(key, 0) + 1
    expected = [(p, v) for p in truth.people if p.enrolled for v in p.visits if v.expect_event]
    true_positives = len(matched)
    known_events = len(events) - unknown_total
    unknown_visits = [(p.name, v.start) for p in truth.people if not p.enrolled for v in p.visits]
    return AttendanceScore(
        known_events=known_events,
        true_positives=true_positives,
        false_positives=known_events - true_positives,
        precision=true_positives / known_events if known_events else 1.0,
        expected_visits=len(expected),
        recall=true_positives / len(expected) if expected else 1.0,
        visits_missed=tuple(VisitRef(p.name, v.start, v.end) for p, v in expected if (p.name, v.start) not in matched),
        wrong_person=wrong,
        known_events_for_strangers=strangers,
        events_in_no_event_visits=no_event,
        repeated_in_visit=sum(n - 1 for n in matched.values()),
        duplicates=_duplicates(known, truth.cooldown_s),
        unknown_visits=len(unknown_visits),
        unknown_visits_with_one_event=sum(unknown_per_visit.get(key, 0) == 1 for key in unknown_visits),
        unknown_events_total=unknown_total,
        unknown_events_on_enrolled=unknown_enrolled,
        unknown_events_unmatched=unknown_unmatched,
    )

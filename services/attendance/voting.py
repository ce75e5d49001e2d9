"""Who a track is: a quality-weighted vote over its embedded faces (pure; no I/O).

A track is embedded only when its face beats its best so far (or, while undecided, again after a while, up
to a cap), so a face walking up to the camera is sampled as it sharpens. Each embedded face votes for its
best gallery match when that is above the gallery's 1:N threshold, else for "unknown"; its vote weighs its
quality. A person is decided once `confirm` faces agree, hold `share` of the weight and `margin` times the
next person's, so one bad frame never logs anyone and a track torn between two people waits. A track that
ends undecided becomes an unknown sighting when it was seen long enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from model.types import FloatArray, ImageArray
from services.search.identification import Match


@dataclass(frozen=True, slots=True)
class Observation:
    """One embedded face of a track and what the gallery said of it."""

    frame: int
    time: datetime
    quality: float
    matches: tuple[Match, ...]  # best first; empty when the gallery is
    threshold: float
    vector: FloatArray

    @property
    def vote(self) -> Match | None:
        """The best match when it clears the threshold; None votes "unknown"."""
        best = self.matches[0] if self.matches else None
        return best if best is not None and best.similarity >= self.threshold else None


@dataclass(frozen=True, slots=True)
class VoteRules:
    confirm: int = 3  # embedded faces that must agree on a person
    share: float = 0.5  # the part of the quality-weighted vote (unknown votes included) the person needs
    margin: float = 2.0  # ... and this many times the weight of the next person
    min_weight: float = 0.05  # the weight of the poorest face: no vote counts for nothing
    improve: float = 0.05  # a face is embedded when its quality beats the track's best by this fraction
    resample_frames: int = 8  # ... or, while undecided, when this many frames passed since the last one
    max_attempts: int = 12  # embedded faces per track at most
    min_quality: float = 0.0  # faces below this are never embedded
    unknown_hits: int = 3  # detections an undecided track needs to become an unknown sighting
    kept_embeddings: int = 5  # an unknown sighting keeps its best few embeddings


@dataclass(frozen=True, slots=True)
class Verdict:
    person_id: str | None  # None: unknown
    display_name: str | None
    similarity: float  # the decided person's best similarity; for unknown, the best of any match
    votes: int
    share: float
    frame: int  # the frame whose face completed the decision


def weight(observation: Observation, rules: VoteRules) -> float:
    return max(rules.min_weight, observation.quality)


def tally(observations: Sequence[Observation], rules: VoteRules) -> Verdict | None:
    """The person the track is, once the vote is clear; None while it is not."""
    total = sum(weight(o, rules) for o in observations)
    by_person: dict[str, list[Observation]] = {}
    for o in observations:
        if (v := o.vote) is not None:
            by_person.setdefault(v.person_id, []).append(o)
    if not by_person or total <= 0:
        return None
    ranked = sorted(((sum(weight(o, rules) for o in v), p) for p, v in by_person.items()), reverse=True)
    (lead, person), runner_up = ranked[0], (ranked[1][0] if len(ranked) > 1 else 0.0)
    votes = by_person[person]
    share = lead / total
    if len(votes) < rules.confirm or share < rules.share or lead < rules.margin * runner_up:
        return None
    best = max((o.vote for o in votes if o.vote is not None), key=lambda c: c.similarity)
    return Verdict(person, best.display_name, best.similarity, len(votes), share, max(o.frame for o in votes))


def unknown_verdict(observations: Sequence[Observation], hits: int, rules: VoteRules) -> Verdict | None:
    """An ended, undecided track: an unknown face when it was seen and embedded enough, else nothing (noise)."""
    if not observations or hits < rules.unknown_hits:
        return None
    best = max((o.matches[0].similarity for o in observations if o.matches), default=0.0)
    return Verdict(None, None, best, len(observations), 0.0, observations[-1].frame)


def kept_vectors(observations: Sequence[Observation], rules: VoteRules) -> list[FloatArray]:
    """The best-quality embeddings of a track, best first."""
    ranked = sorted(observations, key=lambda o: -o.quality)
    return [o.vector for o in ranked[: rules.kept_embeddings]]


def mean_vector(vectors: Sequence[FloatArray]) -> FloatArray:
    """The unit-length mean of unit vectors: a track's template."""
    mean = np.mean(np.stack(vectors), axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


@dataclass(slots=True)
class TrackVote:
    """The voting state of one track."""

    track_id: int
    observations: list[Observation] = field(default_factory=list)
    best_quality: float = -1.0
    last_sent: int | None = None  # the frame of the last face sent to be embedded
    attempts: int = 0
    verdict: Verdict | None = None
    snapshot: ImageArray | None = None  # the best face so far, with context
    first_time: datetime | None = None
    last_time: datetime | None = None

    def wants(self, quality: float, frame: int, rules: VoteRules) -> bool:
        """Whether this face should be embedded."""
        if self.verdict is not None or self.attempts >= rules.max_attempts or quality < rules.min_quality:
            return False
        if self.last_sent is None or quality > self.best_quality * (1.0 + rules.improve):
            return True
        return frame - self.last_sent >= rules.resample_frames

    def sent(self, quality: float, frame: int) -> None:
        self.best_quality = max(self.best_quality, quality)
        self.last_sent = frame
        self.attempts += 1

    def add(self, observation: Observation, rules: VoteRules) -> Verdict | None:
        """Take an embedded face; the verdict when this face decides the track."""
        self.observations.append(observation)
        if self.verdict is None:
            self.verdict = tally(self.observations, rules)
            return self.verdict
        return None

"""A track's identity: the quality-weighted vote, the confirm count, when a face is embedded, unknown tracks."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from services.attendance.voting import (
    Observation,
    TrackVote,
    VoteRules,
    kept_vectors,
    mean_vector,
    tally,
    unknown_verdict,
)
from services.search.identification import Match

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RULES = VoteRules(confirm=3, share=0.5)


def obs(person: str | None, similarity: float = 0.6, quality: float = 0.8, frame: int = 0) -> Observation:
    matches = (Match(person, person.title(), similarity, "f"),) if person else (Match("zed", "Zed", 0.1, "f"),)
    vector = np.zeros(4, dtype=np.float32)
    vector[frame % 4] = 1.0
    return Observation(frame, T0, quality, matches, 0.4, vector)


def test_three_agreeing_faces_decide_and_two_do_not() -> None:
    assert tally([obs("ada", frame=1), obs("ada", frame=2)], RULES) is None
    verdict = tally([obs("ada", 0.5, frame=1), obs("ada", 0.7, frame=2), obs("ada", 0.6, frame=3)], RULES)
    assert verdict is not None
    assert (verdict.person_id, verdict.display_name, verdict.votes, verdict.frame) == ("ada", "Ada", 3, 3)
    assert verdict.similarity == 0.7


def test_one_bad_frame_never_logs_anyone() -> None:
    assert tally([obs("bob", 0.9, quality=1.0)], VoteRules(confirm=1, share=0.5)) is not None
    assert tally([obs("bob", 0.9, quality=1.0)], RULES) is None  # confirm=3: one frame is not enough


def test_the_vote_is_weighted_by_quality_and_unknown_faces_count() -> None:
    good = [obs(None, quality=0.9, frame=i) for i in range(3)]
    weak = [obs("ada", quality=0.1, frame=10 + i) for i in range(3)]
    assert tally(good + weak, RULES) is None  # 3 sharp "unknown" faces outweigh 3 poor matches
    strong = [obs("ada", quality=0.9, frame=10 + i) for i in range(3)]
    assert tally(good[:1] + strong, RULES) is not None


def test_a_split_vote_between_two_people_waits() -> None:
    split = [obs("ada", frame=1), obs("ada", frame=2), obs("ada", frame=3), obs("bob", frame=4), obs("bob", frame=5)]
    split += [obs("bob", frame=6), obs("bob", frame=7)]
    assert tally(split, RULES) is None  # bob has 4 of 7 votes, but not twice ada's weight
    assert tally(split, VoteRules(confirm=3, margin=1.2)) is not None
    assert tally([*split, *(obs("bob", frame=8 + i) for i in range(3))], RULES) is not None  # 7 to 3


def test_an_undecided_track_is_unknown_only_when_seen_long_enough() -> None:
    seen = [obs(None, 0.2, frame=i) for i in range(2)]
    assert unknown_verdict(seen, hits=2, rules=RULES) is None
    verdict = unknown_verdict(seen, hits=3, rules=RULES)
    assert verdict is not None and verdict.person_id is None and verdict.similarity == 0.1
    assert unknown_verdict([], hits=50, rules=RULES) is None


def test_faces_are_embedded_when_they_improve_or_after_a_while_up_to_a_cap() -> None:
    rules = VoteRules(improve=0.1, resample_frames=5, max_attempts=3)
    vote = TrackVote(1)
    assert vote.wants(0.5, 0, rules)
    vote.sent(0.5, 0)
    assert not vote.wants(0.54, 1, rules)  # not 10% better
    assert vote.wants(0.56, 1, rules)
    assert vote.wants(0.3, 5, rules)  # no better, but 5 frames later
    vote.sent(0.3, 5)
    vote.sent(0.9, 6)
    assert not vote.wants(1.0, 20, rules)  # the cap
    decided = TrackVote(2)
    decided.add(obs("ada", frame=1), VoteRules(confirm=1))
    assert decided.verdict is not None and not decided.wants(1.0, 9, rules)


def test_add_returns_the_verdict_once() -> None:
    vote = TrackVote(1)
    assert vote.add(obs("ada", frame=1), RULES) is None
    assert vote.add(obs("ada", frame=2), RULES) is None
    assert vote.add(obs("ada", frame=3), RULES) is not None
    assert vote.add(obs("ada", frame=4), RULES) is None
    assert vote.verdict is not None and vote.verdict.votes == 3


def test_unknown_tracks_keep_their_best_embeddings_and_a_unit_template() -> None:
    observations = [obs(None, quality=q, frame=i) for i, q in enumerate([0.2, 0.9, 0.5, 0.7])]
    kept = kept_vectors(observations, VoteRules(kept_embeddings=2))
    assert [int(np.argmax(v)) for v in kept] == [1, 3]
    assert abs(float(np.linalg.norm(mean_vector(kept))) - 1.0) < 1e-6

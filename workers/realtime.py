"""The realtime script's backend through the queue: chips and sightings out as tasks, answers polled.

`QueueBackend` implements services.attendance.realtime.Backend with the `recognise_chips` and `log_sightings`
tasks; the same module turns sightings into messages and back, for the script and the worker alike."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from model.errors import ErrorInfo
from model.image_io import decode_image, encode_image
from model.types import ImageArray
from services.attendance.events import SNAPSHOT_QUALITY, LogOutcome, Sighting
from services.attendance.realtime import Logged, Reply
from services.attendance.recognition import ChipMatches
from services.search.identification import Match
from workers import payloads
from workers.client import TaskClient, TaskStatus
from workers.messages import ImageMessage, SightingMessage

POLL_S = 0.02


def read_image(message: ImageMessage) -> ImageArray:
    """The pixels of an inline image message."""
    return decode_image(payloads.read(message.payload())[1])


def sighting_message(s: Sighting) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": s.key,
        "person_id": s.person_id,
        "display_name": s.display_name,
        "source": s.source,
        "gallery": s.gallery,
        "time": s.time.isoformat(),
        "similarity": max(-1.0, min(1.0, float(s.similarity))),
        "run_id": s.run_id,
        "track_id": s.track_id,
        "first_frame": s.first_frame,
        "last_frame": s.last_frame,
        "first_seen": s.first_seen.isoformat(),
        "last_seen": s.last_seen.isoformat(),
    }
    if s.snapshot is not None:
        out["snapshot"] = payloads.from_bytes(encode_image(s.snapshot, ".jpg", SNAPSHOT_QUALITY), "snapshot.jpg")
    if s.embeddings is not None:
        out["embeddings"] = [[max(-1.0, min(1.0, x)) for x in v] for v in s.embeddings]
    return out


def sighting_of(m: SightingMessage) -> Sighting:
    return Sighting(
        key=m.key,
        person_id=m.person_id,
        display_name=m.display_name,
        source=m.source,
        gallery=m.gallery,
        time=m.time,
        similarity=m.similarity,
        run_id=m.run_id,
        track_id=m.track_id,
        first_frame=m.first_frame,
        last_frame=m.last_frame,
        first_seen=m.first_seen,
        last_seen=m.last_seen,
        snapshot=read_image(m.snapshot) if m.snapshot is not None else None,
        embeddings=tuple(tuple(v) for v in m.embeddings) if m.embeddings is not None else None,
    )


def chip_result(c: ChipMatches) -> dict[str, Any]:
    return {
        "matches": [
            {"person_id": m.person_id, "display_name": m.display_name, "similarity": m.similarity} for m in c.matches
        ],
        "threshold": c.threshold,
        "vector": [float(x) for x in c.vector],
    }


def chip_matches(d: dict[str, Any]) -> ChipMatches:
    matches = tuple(Match(m["person_id"], m["display_name"], float(m["similarity"]), "") for m in d["matches"])
    return ChipMatches(matches, float(d["threshold"]), np.asarray(d["vector"], dtype=np.float32))


def logged_result(key: str, outcome: LogOutcome) -> dict[str, Any]:
    return {"key": key, "status": outcome.status, "event_id": outcome.event.id if outcome.event else None}


class QueueBackend:
    """Chips and sightings sent as tasks to the workers; `replies` returns the batches that have finished."""

    def __init__(self, client: TaskClient, gallery: str, cooldown_s: float | None, top_k: int = 3) -> None:
        self.client, self.gallery, self.cooldown_s, self.top_k = client, gallery, cooldown_s, top_k
        self._pending: dict[str, tuple[int, str]] = {}  # task id -> (batch, kind)

    def send_chips(self, batch: int, chips: Sequence[ImageArray]) -> None:
        # PNG, lossless: a chip embeds the same through the queue as in-process.
        messages = [payloads.from_bytes(encode_image(c, ".png"), f"chip{i}.png") for i, c in enumerate(chips)]
        task_id = self.client.submit("recognise_chips", chips=messages, gallery=self.gallery, top_k=self.top_k)
        self._pending[task_id] = (batch, "chips")

    def send_sightings(self, batch: int, sightings: Sequence[Sighting]) -> None:
        messages = [sighting_message(s) for s in sightings]
        task_id = self.client.submit("log_sightings", sightings=messages, cooldown_s=self.cooldown_s)
        self._pending[task_id] = (batch, "sightings")

    def replies(self, wait_s: float = 0.0) -> list[Reply]:
        """The batches finished by now, looking again every 20 ms for up to `wait_s` while none is."""
        deadline = time.monotonic() + wait_s
        while True:
            done = [st for st in map(self.client.status, list(self._pending)) if st.done]
            if done or not self._pending or time.monotonic() >= deadline:
                return [self._reply(st) for st in done]
            time.sleep(POLL_S)

    def _reply(self, status: TaskStatus) -> Reply:
        batch, kind = self._pending.pop(status.id)
        if status.state != "SUCCESS":
            return Reply(batch, error=ErrorInfo(status.error_code or "internal_error", status.error or status.state))
        if kind == "chips":
            return Reply(batch, chips=[chip_matches(d) for d in status.result])
        return Reply(batch, logged=[Logged(d["key"], d["status"], d["event_id"]) for d in status.result])

    def close(self) -> None:
        self.client.close()

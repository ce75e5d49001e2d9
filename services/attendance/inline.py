"""The realtime session's backend in this process: the same service calls a worker makes, made here."""

from __future__ import annotations

from collections.abc import Sequence

from model.errors import FaceregError, error_info
from model.types import ImageArray
from services.attendance.events import Sighting, record_sighting
from services.attendance.realtime import Logged, Reply
from services.attendance.recognition import recognise_chips
from services.context import ServiceContext


class InlineBackend:
    """Each batch is done when it is sent; `replies` hands the answers over on the session's next look."""

    def __init__(self, ctx: ServiceContext, gallery: str, cooldown_s: float | None, top_k: int = 3) -> None:
        self.ctx, self.gallery, self.cooldown_s, self.top_k = ctx, gallery, cooldown_s, top_k
        self._done: list[Reply] = []

    def send_chips(self, batch: int, chips: Sequence[ImageArray]) -> None:
        try:
            self._done.append(Reply(batch, chips=recognise_chips(self.ctx, self.gallery, chips, self.top_k)))
        except FaceregError as exc:
            self._done.append(Reply(batch, error=error_info(exc)))

    def send_sightings(self, batch: int, sightings: Sequence[Sighting]) -> None:
        try:
            outcomes = [record_sighting(self.ctx, s, self.cooldown_s) for s in sightings]
        except FaceregError as exc:
            self._done.append(Reply(batch, error=error_info(exc)))
            return
        logged = [
            Logged(s.key, o.status, o.event.id if o.event else None) for s, o in zip(sightings, outcomes, strict=True)
        ]
        self._done.append(Reply(batch, logged=logged))

    def replies(self, wait_s: float = 0.0) -> list[Reply]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._done.clear()

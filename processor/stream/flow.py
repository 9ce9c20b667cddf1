"""Backpressure policy: pause fetching at the in-flight bound, resume below a low watermark.

Pure: it only decides. The source applies the decision to every assigned partition (and again after a
rebalance) and keeps polling while paused, so the consumer stays in its group. The gap between the bound
and the watermark keeps the consumer from flapping between paused and fetching on every finished event.
"""

from __future__ import annotations

from enum import Enum


class Transition(Enum):
    PAUSE = "pause"
    RESUME = "resume"


class FlowControl:
    """Decides pause/resume from the number of events consumed and not yet done.

    :param max_in_flight: pause when this many events are pending.
    :param resume_below: resume when fewer than this are pending; default ``max_in_flight // 2`` (at least 1).
    """

    def __init__(self, max_in_flight: int, resume_below: int | None = None) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        low = max(1, max_in_flight // 2) if resume_below is None else resume_below
        if not 1 <= low <= max_in_flight:
            raise ValueError(f"resume_below must be in [1, {max_in_flight}], got {low}")
        self.max_in_flight = max_in_flight
        self.resume_below = low
        self.paused = False

    def update(self, pending: int) -> Transition | None:
        """The transition to apply now that ``pending`` events are in flight, if any."""
        if not self.paused and pending >= self.max_in_flight:
            self.paused = True
            return Transition.PAUSE
        if self.paused and pending < self.resume_below:
            self.paused = False
            return Transition.RESUME
        return None

    def room(self, pending: int) -> int:
        """How many more events may be fetched now (0 while paused): the fetch size that keeps the bound."""
        return 0 if self.paused else max(0, self.max_in_flight - pending)

"""What every source hands out and answers: :class:`Record` batches, pause/resume, and its own acknowledgements.

Each source owns how a message is acknowledged: Kafka commits contiguous offsets (its offset tracker lives in
:mod:`processor.stream.sources.kafka` alone), a per-message queue would delete each message once it is done.
The loop only says "this message holds N events" (:meth:`Source.track`) and "one of them is done" (the
callback it got back); :meth:`Source.commit` makes what is done durable in the source's own terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from processor.stream.flow import Transition

Done = Callable[[], object]
"""Marks one event of a tracked message done (once per event; after its completion or dead letter is published)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed message: where it came from (``topic``, ``partition``, ``offset`` as a dead letter names them:
    a Kafka topic, or the inbox's pseudo-partition) and what it holds (the original bytes, for dead letters)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    def describe(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Source(Protocol):
    """What the loop reads from."""

    @property
    def exhausted(self) -> bool:
        """True when no record will ever come again (a finite inbox handed out everything)."""
        ...

    @property
    def assigned_partitions(self) -> int:
        """Partitions this member reads now."""
        ...

    @property
    def in_group(self) -> bool:
        """True once this member has joined its group, with or without partitions: a surplus member is ready to
        take partitions over the moment another member leaves."""
        ...

    async def reachable(self) -> bool:
        """Whether the service this source reads from answers now (for ``/ready``), found out in a few seconds at
        most: a broker gone makes the consumer wait, not fail."""
        ...

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` records (``0``: none, but keep the consumer alive), waiting at most ``timeout_s``."""
        ...

    def apply(self, transition: Transition) -> None:
        """Pause or resume fetching from every assigned partition."""
        ...

    def track(self, record: Record, events: int) -> Done:
        """``record`` holds ``events`` events (0: done at once); call the answer once per event when it is done."""
        ...

    def pending(self) -> int:
        """Events tracked and not yet done (of what this source still owns): the flow bound's measure."""
        ...

    async def commit(self) -> None:
        """Acknowledge what is done (Kafka: commit the contiguous commit points of the partitions still held)."""
        ...

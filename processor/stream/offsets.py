"""Which offsets may be committed: per partition, the highest offset below which every consumed event is done.

Pure bookkeeping, no I/O. A message (one offset) may hold several events (an S3 notification with several
records) or none (an S3 test event); its offset is done when all its events are completed or dead-lettered.
Offsets finish out of order, so the commit point only moves past a contiguous run of done offsets. The commit
point is Kafka's "next offset to read": committing it means every offset below it is done.

Each partition's state lives in its own object and every tracked offset gets a :class:`Ticket` bound to that
object. When a partition is revoked its state is dropped: a task of the revoked partition that finishes later
holds a ticket of a state that is no longer current, so marking it done changes nothing (it must not commit,
and must not disturb the state of the same partition if it is assigned back).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(slots=True, eq=False)
class _Partition:
    pending: dict[int, int] = field(default_factory=dict)  # offset -> events not yet done
    order: deque[int] = field(default_factory=deque)  # tracked offsets, ascending; done ones removed lazily
    next_offset: int | None = None  # highest tracked offset + 1
    committed: int | None = None  # last commit point handed out; None: hand the current one out again
    events: int = 0  # events not yet done, over every offset

    def commit_point(self) -> int | None:
        while self.order and self.order[0] not in self.pending:
            self.order.popleft()
        return self.order[0] if self.order else self.next_offset


@dataclass(frozen=True, slots=True, eq=False)
class Ticket(Generic[P]):
    """One tracked offset; hand it back to :meth:`OffsetTracker.done` once per event of the message."""

    partition: P
    offset: int
    _state: _Partition


class OffsetTracker(Generic[P]):
    """Offsets consumed and done, per partition (any hashable key, e.g. aiokafka's ``TopicPartition``)."""

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}

    def track(self, partition: P, offset: int, events: int = 1) -> Ticket[P]:
        """Register a consumed message holding ``events`` events (0: done at once). Offsets of a partition come
        in ascending order; an offset at or below one already tracked means the consumer was rewound (an offset
        reset): the partition starts over, as after a revoke, since everything from there is delivered again."""
        if events < 0:
            raise ValueError(f"events must be >= 0, got {events}")
        state = self._partitions.get(partition)
        if state is None or (state.next_offset is not None and offset < state.next_offset):
            # The consumer starts here: the commit point has not moved until something is done.
            state = self._partitions[partition] = _Partition(committed=offset)
        state.next_offset = offset + 1
        if events:
            state.pending[offset] = events
            state.order.append(offset)
            state.events += events
        return Ticket(partition, offset, state)

    def done(self, ticket: Ticket[P]) -> bool:
        """One event of the ticket's message is done. False (and nothing changes) when its partition was
        revoked since it was tracked. Raises ValueError when called more often than the message has events."""
        state = ticket._state
        if self._partitions.get(ticket.partition) is not state:
            return False
        remaining = state.pending.get(ticket.offset)
        if remaining is None:
            raise ValueError(f"offset {ticket.offset} of {ticket.partition!r} is already done")
        if remaining == 1:
            del state.pending[ticket.offset]
        else:
            state.pending[ticket.offset] = remaining - 1
        state.events -= 1
        return True

    def commit_point(self, partition: P) -> int | None:
        """The offset to commit for ``partition`` (every offset below it is done), None if nothing was tracked."""
        state = self._partitions.get(partition)
        return state.commit_point() if state is not None else None

    def commit_points(self, partitions: Iterable[P] | None = None) -> dict[P, int]:
        """The commit points that moved since they were last handed out (of ``partitions``, default all).
        The caller commits them; if the commit fails the same points come back once :meth:`uncommitted` is
        called for them."""
        points: dict[P, int] = {}
        keys = list(self._partitions) if partitions is None else [p for p in partitions if p in self._partitions]
        for partition in keys:
            state = self._partitions[partition]
            point = state.commit_point()
            if point is not None and point != state.committed:
                points[partition] = point
                state.committed = point
        return points

    def uncommitted(self, points: dict[P, int]) -> None:
        """A commit of ``points`` failed: hand them out again next time (unless the partition was revoked)."""
        for partition, point in points.items():
            state = self._partitions.get(partition)
            if state is not None and state.committed == point:
                state.committed = None

    def forget(self, partitions: Iterable[P]) -> None:
        """Drop revoked partitions; tickets of their in-flight events become inert."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def pending(self) -> int:
        """Events tracked and not yet done, over every partition still held."""
        return sum(state.events for state in self._partitions.values())

    def partitions(self) -> list[P]:
        return list(self._partitions)

"""The embedded default source (no Kafka configured): every message of the local inbox once, a folder of frames
or a ``.jsonl`` of events; done messages are counted by the same offset bookkeeping as Kafka's, on one
pseudo-partition, so that "every event done" means the same."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from processor.settings import StreamSettings
from processor.stream.flow import Transition
from processor.stream.inbox import inbox_messages
from processor.stream.offsets import OffsetTracker
from processor.stream.sources.base import Done, Record

log = logging.getLogger(__name__)


class InboxSource:
    """Every message of the inbox once, as records of the pseudo-partition ``inbox/0``; an async context manager
    (lists the inbox on enter).

    :param skip: object URLs to leave out of a folder inbox (the processor's own outputs).
    """

    TOPIC = "inbox"

    def __init__(self, settings: StreamSettings, skip: Callable[[str], bool]) -> None:
        self._inbox = settings.inbox
        self._skip = skip
        self._tracker: OffsetTracker[int] = OffsetTracker()
        self._records: list[Record] = []
        self._next = 0
        self._paused = False

    async def __aenter__(self) -> Self:
        messages = await asyncio.to_thread(inbox_messages, self._inbox, self._skip)
        self._records = [Record(self.TOPIC, 0, offset, key, value) for offset, (key, value) in enumerate(messages)]
        log.info("inbox %s: %d message(s)", self._inbox, len(self._records))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._records = []

    @property
    def exhausted(self) -> bool:
        return self._next >= len(self._records)

    @property
    def assigned_partitions(self) -> int:
        return 1

    @property
    def in_group(self) -> bool:
        return True

    async def reachable(self) -> bool:
        return True

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        if self._paused or max_records <= 0 or self.exhausted:
            await asyncio.sleep(timeout_s)
            return []
        batch = self._records[self._next : self._next + max_records]
        self._next += len(batch)
        return batch

    def apply(self, transition: Transition) -> None:
        self._paused = transition is Transition.PAUSE

    def track(self, record: Record, events: int) -> Done:
        return functools.partial(self._tracker.done, self._tracker.track(record.partition, record.offset, events))

    def pending(self) -> int:
        return self._tracker.pending()

    async def commit(self) -> None:
        points = self._tracker.commit_points([0])
        if points:
            log.debug("inbox: %d of %d message(s) done", points[0], len(self._records))

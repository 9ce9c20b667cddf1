"""An SQS queue as a source: S3 event notifications (or FrameEvents) in, each message acknowledged on its own.

A received message stays hidden for ``sqs.visibility_timeout_s``; while any of its events is in flight a heartbeat
extends that every third of the timeout, so slow inference never lets a second processor take the same message.
Once every event of a message is done (completed or dead-lettered to our sink) the message is deleted at the next
:meth:`SqsSource.commit`. A crash deletes nothing: the messages reappear after their timeout and are processed
again (idempotent outputs); the queue's own redrive policy moves a message that keeps failing to its dead-letter
queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from processor.errors import BrokerUnavailable
from processor.settings import SqsSettings
from processor.stream.flow import Transition
from processor.stream.sources.base import Done, Record
from processor.stream.sqs import SqsClient

log = logging.getLogger(__name__)

_FETCH_ERROR_PAUSE_S = 1.0


@dataclass(slots=True)
class _Message:
    receipt: str
    events: int


class SqsSource:
    """Messages of ``sqs.queue_url`` as records (topic: the queue's name, partition 0, offset: the order received);
    an async context manager (starts the visibility heartbeat on enter, stops it on exit, deleting nothing)."""

    def __init__(self, settings: SqsSettings) -> None:
        self._settings = settings
        self._client = SqsClient(settings)
        self._name = self._client.queue_url.rstrip("/").rpartition("/")[2]
        self._in_flight: dict[int, _Message] = {}
        self._done: list[str] = []
        self._next = 0
        self._paused = False
        self._receive_answered = True  # until a receive fails: the first one may wait a whole long poll
        self._heartbeat: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        self._heartbeat = asyncio.create_task(self._extend_forever())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self._client.__aexit__(kind, error, trace)

    @property
    def exhausted(self) -> bool:
        return False

    @property
    def assigned_partitions(self) -> int:
        return 1

    @property
    def in_group(self) -> bool:
        return True

    async def reachable(self) -> bool:
        """Whether the last receive was answered (one is under way at every moment the source is not paused)."""
        return self._receive_answered

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        if self._paused or max_records <= 0:
            await asyncio.sleep(timeout_s)
            return []
        settings = self._settings
        try:
            messages = await self._client.receive(max_records, settings.wait_time_s, settings.visibility_timeout_s)
        except BrokerUnavailable as error:
            self._receive_answered = False
            log.warning("receive failed (%s); retrying in %.1f s", error, _FETCH_ERROR_PAUSE_S)
            await asyncio.sleep(_FETCH_ERROR_PAUSE_S)
            return []
        self._receive_answered = True
        records = []
        for message in messages:
            offset, self._next = self._next, self._next + 1
            self._in_flight[offset] = _Message(message["ReceiptHandle"], 0)
            body = message.get("Body")
            headers = tuple(
                (name, str(attribute.get("StringValue", "")).encode())
                for name, attribute in (message.get("MessageAttributes") or {}).items()
            )
            value = body.encode() if isinstance(body, str) else None
            records.append(Record(self._name, 0, offset, message.get("MessageId", "").encode(), value, headers))
        return records

    def apply(self, transition: Transition) -> None:
        self._paused = transition is Transition.PAUSE

    def track(self, record: Record, events: int) -> Done:
        message = self._in_flight[record.offset]
        message.events = events
        if events == 0:
            self._finish(record.offset)
        return lambda: self._event_done(record.offset)

    def pending(self) -> int:
        return sum(message.events for message in self._in_flight.values())

    async def commit(self) -> None:
        """Delete the messages whose events are all done (failed deletes are tried again next time)."""
        receipts, self._done = self._done, []
        if not receipts:
            return
        try:
            failed = await self._client.delete(receipts)
        except BrokerUnavailable as error:
            log.warning("delete of %d message(s) failed: %s", len(receipts), error)
            failed = receipts
        self._done.extend(failed)

    def _event_done(self, offset: int) -> None:
        message = self._in_flight.get(offset)
        if message is None:
            raise ValueError(f"message {offset} of {self._name} is already done")
        message.events -= 1
        if message.events <= 0:
            self._finish(offset)

    def _finish(self, offset: int) -> None:
        self._done.append(self._in_flight.pop(offset).receipt)

    async def _extend_forever(self) -> None:
        """Every third of the visibility timeout, hide the messages still in flight for a whole timeout more."""
        timeout = self._settings.visibility_timeout_s
        while True:
            await asyncio.sleep(timeout / 3)
            receipts = [message.receipt for message in self._in_flight.values()]
            if not receipts:
                continue
            try:
                failed = await self._client.extend(receipts, timeout)
            except BrokerUnavailable as error:
                log.warning("visibility extension of %d message(s) failed: %s", len(receipts), error)
                continue
            if failed:
                log.warning("visibility of %d message(s) could not be extended (receipt expired?)", len(failed))

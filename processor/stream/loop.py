"""The consume loop of one run: fetch within the flow bound, one task per event, periodic acknowledgements.

The loop owns no acknowledgement state: it tells the source how many events a record holds and when each is
done, and asks it to commit now and then; what "commit" means is the source's own (Kafka: contiguous offsets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine

from processor import metrics
from processor.errors import InvalidEvent
from processor.settings import StreamSettings
from processor.stream.flow import FlowControl
from processor.stream.messages import parse_message
from processor.stream.sinks.base import Sink
from processor.stream.sources.base import Done, Record, Source
from processor.stream.worker import StreamStats, Worker

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_S = 0.5
_PAUSED_FETCH_TIMEOUT_S = 0.05  # short while paused: resume soon after events finish, and keep polling


class ConsumeLoop:
    """The consume loop of one run: fetch within the flow bound, one task per event, periodic commits."""

    def __init__(
        self,
        settings: StreamSettings,
        source: Source,
        sink: Sink,
        worker: Worker,
        stats: StreamStats,
        stop: asyncio.Event,
    ) -> None:
        self._settings = settings
        self._source = source
        self._sink = sink
        self._worker = worker
        self._stats = stats
        self._stop = stop
        self._flow = FlowControl(settings.max_in_flight, settings.resume_below)
        self._tasks: set[asyncio.Task[bool]] = set()

    async def consume(self) -> None:
        next_commit = time.monotonic() + self._settings.commit_interval_s
        try:
            while not self._stop.is_set() and not (self._source.exhausted and not self._tasks):
                pending = self._source.pending()
                transition = self._flow.update(pending)
                if transition is not None:
                    self._source.apply(transition)
                timeout = _PAUSED_FETCH_TIMEOUT_S if self._flow.paused else _FETCH_TIMEOUT_S
                for record in await self._source.fetch(self._flow.room(pending), timeout):
                    self._dispatch(record)
                self._stats.peak_pending = max(self._stats.peak_pending, self._source.pending())
                if time.monotonic() >= next_commit:
                    await self._source.commit()
                    next_commit = time.monotonic() + self._settings.commit_interval_s
        except BaseException:
            await self._abandon()  # a crash path: cancel everything, commit nothing
            raise

    async def drain(self) -> None:
        """Wait for the events in flight (at most ``shutdown_timeout_s``), abandon the rest, commit, flush."""
        deadline = time.monotonic() + self._settings.shutdown_timeout_s
        if self._tasks:
            log.info("draining %d event(s) in flight", len(self._tasks))
        try:
            while self._tasks and (left := deadline - time.monotonic()) > 0:
                await asyncio.wait(self._tasks, timeout=min(left, self._settings.commit_interval_s))
                await self._source.commit()
        finally:
            if self._tasks:
                log.warning("%d event(s) not done within the shutdown timeout: left for replay", len(self._tasks))
                await self._abandon()
        await self._source.commit()
        await self._sink.flush()

    def _dispatch(self, record: Record) -> None:
        try:
            events = parse_message(record.value, record.headers)
        except Exception as error:  # InvalidEvent, or a bug of the parser: either way this message is dead
            if not isinstance(error, InvalidEvent):
                log.exception("parsing %s failed", record.describe())
            done = self._source.track(record, 1)
            metrics.record_consumed()
            self._spawn(self._worker.reject(record, error), done)
            return
        done = self._source.track(record, len(events))
        metrics.record_consumed(len(events))
        for event in events:
            self._spawn(self._worker.process(event, record), done)

    def _spawn(self, job: Coroutine[object, object, bool], done: Done) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(lambda finished: self._finished(finished, done))

    def _finished(self, task: asyncio.Task[bool], done: Done) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # Worker never raises; if it ever does, the event stays undone (replayed)
            log.error("event task failed", exc_info=error)
        elif task.result():
            done()  # after the publish was acknowledged: now the source may acknowledge the message

    async def _abandon(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

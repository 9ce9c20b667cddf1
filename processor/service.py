"""`anonymizer run`: the stream processor's lifecycle — open resources, consume, drain on a signal, close.

Resources open in one AsyncExitStack in dependency order (storage, HTTP session, localizer, producer,
consumer), so they close in reverse even on error. SIGTERM/SIGINT only set an event; the loop then stops
fetching, drains within ``stream.shutdown_timeout_s``, commits what is done and flushes. A crash path
commits nothing: whatever is not committed is replayed by the next owner of the partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any

from aiokafka import TopicPartition

from processor import metrics
from processor.errors import InvalidEvent
from processor.health import inference_readiness, serve_health
from processor.inference.http import policy_session
from processor.inference.router import InferenceRouter
from processor.localizers import open_localizer
from processor.serving import stop_on_signals
from processor.settings import Settings
from processor.storage import ObjectStorage
from processor.stream.configurations import Configurations
from processor.stream.flow import FlowControl
from processor.stream.messages import parse_message
from processor.stream.offsets import OffsetTracker, Ticket
from processor.stream.sink import JsonlSink, KafkaSink, Sink
from processor.stream.source import InboxSource, KafkaSource, Record, Source
from processor.stream.worker import StreamStats, Worker
from schemas.config import UserConfiguration

log = logging.getLogger(__name__)

_FETCH_TIMEOUT_S = 0.5
_PAUSED_FETCH_TIMEOUT_S = 0.05  # short while paused: resume soon after events finish, and keep polling


async def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (or, for the embedded inbox, until every inbox event is done); 0 on a clean stop.

    The embedded inbox is a batch: it exits 1 when any event did not complete (dead-lettered, or abandoned at a
    signal), so a script can tell. A Kafka consumer's dead letters are its normal output: it exits 0."""
    with stop_on_signals() as stop:
        stats = await serve(settings, stop)
    log.info(
        "stopped: %d completed, %d dead-lettered, %d own outputs skipped, %d retries, %d abandoned for replay; "
        "at most %d frames in flight, %d events pending",
        stats.completed,
        stats.dead_lettered,
        stats.skipped,
        stats.retries,
        stats.abandoned,
        stats.peak_in_flight,
        stats.peak_pending,
    )
    embedded = settings.kafka.bootstrap_servers is None
    return 1 if embedded and (stats.dead_lettered or stats.abandoned) else 0


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    stats: StreamStats | None = None,
) -> StreamStats:
    """Consume until ``stop`` is set (or a finite source is done), then drain, commit and close everything."""
    stats = stats if stats is not None else StreamStats()
    embedded = settings.kafka.bootstrap_servers is None
    if embedded:
        settings = embedded_settings(settings)
    tracker: OffsetTracker[TopicPartition] = OffsetTracker()
    configurations = Configurations(settings.stream)  # a broken default configuration fails here, at start
    readiness = _Readiness(stop, configurations.default)
    async with AsyncExitStack() as stack:
        if not embedded:  # first, so that /health answers while the rest starts and /ready says when it has
            await stack.enter_async_context(serve_health(settings.http, readiness))
        storage = await stack.enter_async_context(ObjectStorage(settings.storage, settings.limits))
        session = await stack.enter_async_context(policy_session(settings.inference))
        localizer = readiness.router = await stack.enter_async_context(open_localizer(settings, session))
        sink: Sink = await stack.enter_async_context(
            JsonlSink(settings.stream.completions_file) if embedded else KafkaSink(settings.kafka)
        )
        source: Source = await stack.enter_async_context(
            InboxSource(settings.stream, tracker, skip=storage.is_output)
            if embedded
            else KafkaSource(settings.kafka, tracker)
        )
        readiness.source = source
        worker = Worker(
            settings=settings,
            storage=storage,
            localizer=localizer,
            sink=sink,
            configurations=configurations,
            stats=stats,
            stop=stop,
        )
        loop = _Loop(settings, source, sink, worker, tracker, stats, stop)
        await loop.consume()
        await loop.drain()
    return stats


class _Readiness:
    """What ``/ready`` says for ``anonymizer run``: ready once the consumer has joined its group (with or without
    partitions: a surplus member of a scaled-out group is ready to take over) and inference can be reached (the
    built-in models always can) for every entry of the default configuration, and not once shutdown began."""

    def __init__(self, stop: asyncio.Event, configuration: UserConfiguration) -> None:
        self._stop = stop
        self._configuration = configuration
        self.router: InferenceRouter | None = None
        self.source: Source | None = None

    async def __call__(self) -> tuple[bool, dict[str, Any]]:
        if self.router is None or self.source is None:
            return False, {"stream": "starting"}
        capabilities = self.router.registry.capabilities
        ready, details = inference_readiness(capabilities, builtin=True, configuration=self._configuration)
        stopping = self._stop.is_set()
        in_group = self.source.in_group
        details["stream"] = {
            "in_group": in_group,
            "assigned_partitions": self.source.assigned_partitions,
            "stopping": stopping,
        }
        return ready and in_group and not stopping, details


def embedded_settings(settings: Settings) -> Settings:
    """With a folder inbox and no file root, the inbox is the root: outputs go to ``<inbox>/<output_prefix>…``
    mirroring the inbox's subfolders (and are never taken as inputs on the next run)."""
    inbox = settings.stream.inbox
    if settings.storage.file_root is not None or not inbox.is_dir():
        return settings
    storage = settings.storage.model_copy(update={"file_root": inbox.absolute()})
    return settings.model_copy(update={"storage": storage})


class _Loop:
    """The consume loop of one run: fetch within the flow bound, one task per event, periodic commits."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        sink: Sink,
        worker: Worker,
        tracker: OffsetTracker[TopicPartition],
        stats: StreamStats,
        stop: asyncio.Event,
    ) -> None:
        self._settings = settings.stream
        self._source = source
        self._sink = sink
        self._worker = worker
        self._tracker = tracker
        self._stats = stats
        self._stop = stop
        self._flow = FlowControl(settings.stream.max_in_flight, settings.stream.resume_below)
        self._tasks: set[asyncio.Task[bool]] = set()

    async def consume(self) -> None:
        next_commit = time.monotonic() + self._settings.commit_interval_s
        try:
            while not self._stop.is_set() and not (self._source.exhausted and not self._tasks):
                pending = self._tracker.pending()
                transition = self._flow.update(pending)
                if transition is not None:
                    self._source.apply(transition)
                timeout = _PAUSED_FETCH_TIMEOUT_S if self._flow.paused else _FETCH_TIMEOUT_S
                for record in await self._source.fetch(self._flow.room(pending), timeout):
                    self._dispatch(record)
                self._stats.peak_pending = max(self._stats.peak_pending, self._tracker.pending())
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
                log.exception(
                    "parsing %s[%d]@%d failed", record.partition.topic, record.partition.partition, record.offset
                )
            ticket = self._tracker.track(record.partition, record.offset, 1)
            metrics.record_consumed()
            self._spawn(self._worker.reject(record, error), ticket)
            return
        ticket = self._tracker.track(record.partition, record.offset, len(events))
        metrics.record_consumed(len(events))
        for event in events:
            self._spawn(self._worker.process(event, record), ticket)

    def _spawn(self, job: Coroutine[object, object, bool], ticket: Ticket[TopicPartition]) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(lambda finished: self._finished(finished, ticket))

    def _finished(self, task: asyncio.Task[bool], ticket: Ticket[TopicPartition]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # Worker never raises; if it ever does, the event stays undone (replayed)
            log.error("event task failed", exc_info=error)
        elif task.result():
            self._tracker.done(ticket)  # after the publish was acknowledged: now its offset may be committed

    async def _abandon(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

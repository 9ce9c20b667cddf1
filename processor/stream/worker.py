"""One event's processing: resolve its configuration, fetch, anonymize, put, publish — or dead-letter.

Frames go through :func:`processor.pipeline.anonymize_image`; videos (``kind: video``, or a video suffix when
the event does not say) through :func:`processor.video.objects.anonymized_video`.

This is the one place that decides retry or dead letter. Transient errors are retried with exponential backoff
and jitter, for at least ``stream.max_attempts`` tries and ``stream.retry_budget_s`` after the first failure (an
outage of storage or inference is ridden out: events waiting to retry stay pending, so once
``stream.max_in_flight`` of them wait the source is paused, and each retry is a probe), without holding a frame
slot while waiting (each event is its own task, so nothing else waits); permanent errors are dead-lettered at
once; anything unplanned is logged and dead-lettered with kind ``internal``. Nothing raises out of
:meth:`Worker.process`, so no event can crash the processor or stall its partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from types import TracebackType
from typing import Protocol

from processor import __version__, metrics
from processor.errors import INTERNAL, ProcessorError, TransientError
from processor.inference.base import Localizer
from processor.logs import log_context
from processor.pipeline import anonymize_image
from processor.pixel_budget import PixelBudget
from processor.retry import backoff_s
from processor.settings import Settings
from processor.stream.configurations import Configurations
from processor.stream.sinks.base import Sink
from processor.stream.sources.base import Record
from processor.video.objects import anonymized_video, is_video_name, output_suffix
from schemas.config import UserConfiguration
from schemas.events import CompletionEvent, DeadLetter, EventKind, FrameEvent
from schemas.results import FrameResult

log = logging.getLogger(__name__)

class Storage(Protocol):
    """What the worker needs of :class:`processor.storage.ObjectStorage`."""

    async def get(self, url: str) -> bytes: ...

    async def put(self, url: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None: ...

    def output_url(self, source_url: str, configuration_hash: str, explicit: str | None = None) -> str: ...

    def is_output(self, url: str) -> bool: ...


@dataclass
class StreamStats:
    """Counters of one run. ``peak_in_flight``: the most frames ever held at once (never above the bound);
    ``peak_pending``: the most events consumed and not yet done (the backlog taken into memory)."""

    in_flight: int = 0
    peak_in_flight: int = 0
    peak_pending: int = 0
    completed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    retries: int = 0
    abandoned: int = 0


class FrameSlots:
    """The bound on frames in flight (fetched and not yet written); an async context manager per frame."""

    def __init__(self, bound: int, stats: StreamStats) -> None:
        self._semaphore = asyncio.Semaphore(bound)
        self._stats = stats

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()
        self._stats.in_flight += 1
        self._stats.peak_in_flight = max(self._stats.peak_in_flight, self._stats.in_flight)
        metrics.FRAMES_IN_FLIGHT.inc()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        metrics.FRAMES_IN_FLIGHT.dec()
        self._stats.in_flight -= 1
        self._semaphore.release()


@dataclass(frozen=True, slots=True)
class _Output:
    """What an event's job produced: the bytes to put and what the completion event says of them."""

    data: bytes
    content_type: str
    result: FrameResult
    frames: int | None = None  # videos only
    duration_s: float | None = None
    frames_blackened: int | None = None
    frames_dropped: int | None = None
    keyframes: int | None = None
    frames_tracked: int | None = None


class Worker:
    """Processes events; shared by every task of a run.

    :param stop: set on shutdown: retries still waiting give up (the event is not done, so its offset stays
        uncommitted and the next owner of the partition replays it).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        storage: Storage,
        localizer: Localizer,
        sink: Sink,
        configurations: Configurations,
        stats: StreamStats,
        stop: asyncio.Event,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._localizer = localizer
        self._sink = sink
        self._configurations = configurations
        self._stats = stats
        self._stop = stop
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._slots = FrameSlots(settings.stream.max_in_flight, stats)
        self._pixels = PixelBudget(settings.limits.max_pixels_in_flight)
        self._videos = asyncio.Semaphore(settings.video.videos_in_flight)

    async def process(self, event: FrameEvent, record: Record) -> bool:
        """Complete or dead-letter ``event`` (from ``record``). True when it is done, False when abandoned at
        shutdown. Publishes before returning True: the caller marks the offset done only then.

        An event about one of our own outputs (a bucket notification of the object we just wrote) is skipped:
        anonymizing it would write ``anonymized/<hash>/anonymized/<hash>/...`` and loop for ever."""
        with log_context(event_id=event.id):
            return await self._process(event, record)

    async def _process(self, event: FrameEvent, record: Record) -> bool:
        attempts = 0
        first_failure: float | None = None
        while True:
            attempts += 1
            try:
                if self._storage.is_output(event.source):  # may raise for a malformed source: classified below
                    log.info("event %s: %s is an output of this processor, skipped", event.id, event.source)
                    self._stats.skipped += 1
                    return True
                completion = await self._anonymize(event, attempts)
            except TransientError as error:
                first_failure = first_failure or time.monotonic()
                if self._gives_up(attempts, first_failure):
                    return await self._dead_letter(record, event.id, error.kind, str(error), attempts)
                if not await self._retry_later(event, error, attempts):
                    return False
                continue
            except ProcessorError as error:  # permanent (or outside both branches: retrying cannot be judged)
                return await self._dead_letter(record, event.id, error.kind, str(error), attempts)
            except Exception as error:  # the one outermost catch: a bug must not stop the stream
                log.exception("event %s: unexpected error", event.id)
                return await self._dead_letter(record, event.id, INTERNAL, _describe(error), attempts)
            try:
                published = await self._publish(functools.partial(self._sink.completed, completion), event.id)
            except Exception as error:  # e.g. a completion too large for the broker
                log.exception("event %s: the completion event cannot be published", event.id)
                return await self._dead_letter(record, event.id, INTERNAL, _describe(error), attempts)
            if published:
                self._stats.completed += 1
                metrics.record_completed()
                metrics.observe_frame(completion.result)
            return published

    def _gives_up(self, attempts: int, first_failure: float) -> bool:
        stream = self._settings.stream
        return attempts >= stream.max_attempts and time.monotonic() - first_failure >= stream.retry_budget_s

    async def _retry_later(self, event: FrameEvent, error: TransientError, attempts: int) -> bool:
        """Wait before the next try; False when shutdown began meanwhile (the event is abandoned, not done)."""
        stream = self._settings.stream
        delay = backoff_s(attempts, stream.retry_backoff_s, stream.retry_backoff_max_s, error.retry_after_s, self._rng)
        log.info(
            "event %s: %s (%s); try %d in %.2f s (dead letter after %d tries and %.0f s)",
            event.id,
            error.kind,
            error,
            attempts + 1,
            delay,
            stream.max_attempts,
            stream.retry_budget_s,
        )
        self._stats.retries += 1
        metrics.record_retried(error.kind)
        if await self._wait(delay):
            return True
        self._stats.abandoned += 1
        return False

    async def reject(self, record: Record, error: Exception) -> bool:
        """Dead-letter a message that holds no valid event: InvalidEvent (not JSON, wrong schema), or kind
        ``internal`` for anything else the parser raised."""
        if isinstance(error, ProcessorError):
            return await self._dead_letter(record, None, error.kind, str(error), attempts=1)
        return await self._dead_letter(record, None, INTERNAL, _describe(error), attempts=1)

    async def _anonymize(self, event: FrameEvent, attempts: int) -> CompletionEvent:
        """One job for frames and videos: resolve, name the output once, fetch, anonymize, put, complete."""
        configuration = self._configurations.resolve(event.configuration)
        digest = configuration.digest()
        video = event.kind is EventKind.video or (event.kind is None and is_video_name(event.source))
        output_url = self._output_url(event, digest, video=video)
        # A video holds one of ``video.videos_in_flight`` too (its own pipeline bounds the frames it decodes).
        async with self._videos if video else contextlib.nullcontext(), self._slots:
            started = time.perf_counter()
            data = await self._storage.get(event.source)
            fetched = time.perf_counter()
            produce = self._video_output if video else self._image_output
            output = await produce(data, event.source, configuration)
            del data
            anonymized = time.perf_counter()
            # Idempotent: the key depends only on the source and the configuration, so a replay rewrites the
            # same object with the same bytes.
            await self._storage.put(
                output_url,
                output.data,
                content_type=output.content_type,
                metadata={"source": event.source, "configuration-hash": digest, "processor-version": __version__},
            )
            stored = time.perf_counter()
        timings = {**output.result.timings_ms, "fetch": _ms(fetched - started), "put": _ms(stored - anonymized)}
        return CompletionEvent(
            id=event.id,
            source=event.source,
            output=output_url,
            kind=EventKind.video if video else EventKind.frame,
            result=output.result.model_copy(update={"timings_ms": timings}),
            configuration_hash=digest,
            processor_version=__version__,
            attributes=event.attributes,
            attempts=attempts,
            completed_at=datetime.now(UTC),
            frames=output.frames,
            duration_s=output.duration_s,
            frames_blackened=output.frames_blackened,
            frames_dropped=output.frames_dropped,
            keyframes=output.keyframes,
            frames_tracked=output.frames_tracked,
        )

    def _output_url(self, event: FrameEvent, digest: str, *, video: bool) -> str:
        """Where the event's output goes. A video's keeps the source's name, plus the container's suffix when it
        differs (``clip.avi`` → ``clip.avi.mp4``: ``clip.avi`` and ``clip.webm`` never share an output); an
        explicit ``output`` is taken as it is."""
        output_url = self._storage.output_url(event.source, digest, explicit=event.output)
        suffix = output_suffix(event.source)
        if video and event.output is None and PurePosixPath(output_url).suffix.lower() != suffix:
            output_url += suffix
        return output_url

    async def _image_output(self, data: bytes, source: str, configuration: UserConfiguration) -> _Output:
        image = await anonymize_image(
            data,
            configuration,
            self._localizer,
            output=self._settings.output,
            limits=self._settings.limits,
            budget=self._pixels,
        )
        return _Output(image.data, image.content_type, image.result)

    async def _video_output(self, data: bytes, source: str, configuration: UserConfiguration) -> _Output:
        async with anonymized_video(data, source, configuration, self._localizer, self._settings) as video:
            encoded = await asyncio.to_thread(video.path.read_bytes)
        result = video.result
        return _Output(
            encoded,
            video.content_type,
            result.frame_result(),
            result.frames,
            result.duration_s,
            result.frames_blackened,
            result.frames_dropped,
            result.keyframes,
            result.frames_tracked,
        )

    async def _dead_letter(self, record: Record, event_id: str | None, kind: str, message: str, attempts: int) -> bool:
        log.warning(
            "dead letter for %s (%s): %s: %s",
            event_id or "a message",
            record.describe(),
            kind,
            message,
        )
        letter = DeadLetter(
            event_id=event_id,
            error_kind=kind,
            error_message=message,
            attempts=attempts,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            headers=DeadLetter.encode_headers(record.headers),
            payload_base64=DeadLetter.encode_payload(record.value),
            failed_at=datetime.now(UTC),
            processor_version=__version__,
        )
        try:
            published = await self._publish(functools.partial(self._sink.dead_letter, letter, record.key), event_id)
        except Exception:  # the log is the last record left; a stalled partition helps no one
            log.exception("dead letter cannot be published, logged instead: %s", letter.model_dump_json())
            published = True
        if published:
            self._stats.dead_lettered += 1
            metrics.record_dead_lettered(kind)
        return published

    async def _publish(self, send: Callable[[], Awaitable[None]], event_id: str | None) -> bool:
        """Retry a publish for as long as the broker is unavailable, until shutdown (then False: not done)."""
        stream = self._settings.stream
        attempt = 0
        while True:
            attempt += 1
            try:
                await send()
            except TransientError as error:
                delay = backoff_s(attempt, stream.retry_backoff_s, stream.retry_backoff_max_s, None, self._rng)
                log.warning("publish for event %s: %s; retrying in %.2f s", event_id, error, delay)
                if not await self._wait(delay):
                    self._stats.abandoned += 1
                    return False
            else:
                return True

    async def _wait(self, delay_s: float) -> bool:
        """Sleep ``delay_s``; False at once when shutdown begins."""
        try:
            await asyncio.wait_for(self._stop.wait(), delay_s)
        except TimeoutError:
            return True
        return False


def _describe(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]  # a TaskGroup's wrapper says nothing: name what actually went wrong
    return f"{type(error).__name__}: {error}"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)

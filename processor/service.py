"""`anonymizer run`: the stream processor's lifecycle — open resources, consume, drain on a signal, close.

Resources open in one AsyncExitStack in dependency order (storage, HTTP session, localizer, producer,
consumer), so they close in reverse even on error. SIGTERM/SIGINT only set an event; the loop then stops
fetching, drains within ``stream.shutdown_timeout_s``, commits what is done and flushes. A crash path
commits nothing: whatever is not committed is replayed by the next owner of the partition.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any

from processor.health import inference_readiness, serve_health
from processor.inference.http import policy_session
from processor.inference.router import InferenceRouter
from processor.localizers import open_localizer
from processor.serving import stop_on_signals
from processor.settings import Settings
from processor.storage import ObjectStorage
from processor.stream.configurations import Configurations
from processor.stream.loop import ConsumeLoop
from processor.stream.sinks.factory import open_sink
from processor.stream.sources.base import Source
from processor.stream.sources.factory import open_source
from processor.stream.worker import StreamStats, Worker
from schemas.config import UserConfiguration

log = logging.getLogger(__name__)


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
    embedded = is_embedded(settings)
    return 1 if embedded and (stats.dead_lettered or stats.abandoned) else 0


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    stats: StreamStats | None = None,
) -> StreamStats:
    """Consume until ``stop`` is set (or a finite source is done), then drain, commit and close everything."""
    stats = stats if stats is not None else StreamStats()
    embedded = is_embedded(settings)
    if embedded:
        settings = embedded_settings(settings)
    configurations = Configurations(settings.stream)  # a broken default configuration fails here, at start
    readiness = _Readiness(stop, configurations.default)
    async with AsyncExitStack() as stack:
        if not embedded:  # first, so that /health answers while the rest starts and /ready says when it has
            await stack.enter_async_context(serve_health(settings.http, readiness))
        storage = readiness.storage = await stack.enter_async_context(ObjectStorage(settings.storage, settings.limits))
        session = await stack.enter_async_context(policy_session(settings.inference))
        localizer = readiness.router = await stack.enter_async_context(open_localizer(settings, session))
        sink = await stack.enter_async_context(open_sink(settings))
        source = await stack.enter_async_context(open_source(settings, skip=storage.is_output))
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
        loop = ConsumeLoop(settings.stream, source, sink, worker, stats, stop)
        await loop.consume()
        await loop.drain()
    return stats


class _Readiness:
    """What ``/ready`` says for ``anonymizer run``: ready once the consumer has joined its group (with or without
    partitions: a surplus member of a scaled-out group is ready to take over), while its broker or queue answers,
    while object storage answers (:attr:`ObjectStorage.answering`), and inference can be reached (the built-in
    models always can) for every entry of the default configuration, and not once shutdown began."""

    def __init__(self, stop: asyncio.Event, configuration: UserConfiguration) -> None:
        self._stop = stop
        self._configuration = configuration
        self.router: InferenceRouter | None = None
        self.source: Source | None = None
        self.storage: ObjectStorage | None = None

    async def __call__(self) -> tuple[bool, dict[str, Any]]:
        if self.router is None or self.source is None or self.storage is None:
            return False, {"stream": "starting"}
        capabilities = self.router.registry.capabilities
        ready, details = inference_readiness(
            capabilities, builtin=True, configuration=self._configuration, is_healthy=self.router.is_healthy
        )
        stopping = self._stop.is_set()
        in_group = self.source.in_group
        reachable = await self.source.reachable()
        details["stream"] = {
            "in_group": in_group,
            "reachable": reachable,
            "assigned_partitions": self.source.assigned_partitions,
            "stopping": stopping,
        }
        details["storage"] = {"answering": self.storage.answering}
        return ready and in_group and reachable and self.storage.answering and not stopping, details


def is_embedded(settings: Settings) -> bool:
    """No broker and no queue configured: the local inbox in, JSON lines out, a batch run."""
    return settings.kafka.bootstrap_servers is None and settings.sqs.queue_url is None


def embedded_settings(settings: Settings) -> Settings:
    """With a folder inbox and no file root, the inbox is the root: outputs go to ``<inbox>/<output_prefix>…``
    mirroring the inbox's subfolders (and are never taken as inputs on the next run)."""
    inbox = settings.stream.inbox
    if settings.storage.file_root is not None or not inbox.is_dir():
        return settings
    storage = settings.storage.model_copy(update={"file_root": inbox.absolute()})
    return settings.model_copy(update={"storage": storage})

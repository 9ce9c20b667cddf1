"""`anonymizer enqueue PREFIX_URL`: bulk backfill — one FrameEvent per object under a bucket prefix or a folder.

Events go to the input topic (``kafka.bootstrap_servers`` set) keyed by source URL, or else to a JSON-lines
file that ``anonymizer run`` reads as its inbox. The event id is the source URL, so running twice produces
the same events, and the processor's idempotent output keys make the second run rewrite the same bytes.
The processor's own outputs and hidden objects (a path segment starting with '.') are never enqueued.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from processor.errors import BrokerUnavailable, InvalidConfiguration
from processor.media import IMAGE_SUFFIXES
from processor.settings import Settings
from processor.storage import ObjectStorage
from processor.stream.kafka import connection_options
from schemas.events import ConfigurationName, FrameEvent

_MAX_PENDING_SENDS = 1000


@dataclass(frozen=True)
class EnqueueSummary:
    events: int
    bytes: int
    seconds: float
    skipped: int
    target: str

    def line(self) -> str:
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        return (
            f"enqueued {self.events} events ({self.bytes / 1e6:.1f} MB of objects) in {self.seconds:.1f} s "
            f"({rate:.0f} events/s) to {self.target}; skipped {self.skipped} objects"
        )


class EventWriter(Protocol):
    target: str

    async def write(self, event: FrameEvent) -> None: ...


async def enqueue(
    prefix_url: str,
    settings: Settings,
    *,
    jsonl: Path = Path("events.jsonl"),
    configuration: str | None = None,
    rate_per_s: float | None = None,
    suffixes: Collection[str] | None = IMAGE_SUFFIXES,
    progress: bool = True,
) -> EnqueueSummary:
    """List ``prefix_url`` and publish one FrameEvent per object whose suffix is in ``suffixes`` (None = all).

    :param configuration: the name of a stored configuration to put in every event (None = the default).
    :param rate_per_s: at most this many events per second (None = as fast as the target takes them).
    Raises InvalidEvent for a bad URL, InvalidConfiguration for a bad configuration name, StorageUnavailable
    when listing fails, BrokerUnavailable when Kafka does.
    """
    if rate_per_s is not None and rate_per_s <= 0:
        raise ValueError(f"rate_per_s must be positive, not {rate_per_s}")
    if configuration is not None:
        _check_configuration_name(configuration)
    started = time.monotonic()
    events = size = skipped = 0
    async with (
        ObjectStorage(settings.storage, settings.limits) as storage,
        open_writer(settings, jsonl) as writer,
    ):
        bar = tqdm(desc="enqueue", unit="ev", file=sys.stderr, disable=not progress, dynamic_ncols=True)
        try:
            async for url, object_size in storage.list(prefix_url):
                if not _wanted(url, suffixes) or storage.is_output(url):
                    skipped += 1
                    continue
                if rate_per_s is not None:
                    await asyncio.sleep(max(0.0, started + events / rate_per_s - time.monotonic()))
                await writer.write(FrameEvent(id=url, source=url, configuration=configuration))
                events += 1
                size += object_size
                bar.update()
        finally:
            bar.close()
    return EnqueueSummary(events, size, time.monotonic() - started, skipped, writer.target)


def _check_configuration_name(name: str) -> None:
    try:
        TypeAdapter(ConfigurationName).validate_python(name)
    except ValidationError as error:
        message = error.errors(include_url=False)[0]["msg"]
        raise InvalidConfiguration([f"configuration name {name!r}: {message}"]) from error


def _wanted(url: str, suffixes: Collection[str] | None) -> bool:
    path = PurePosixPath(url.partition("://")[2])
    if any(part.startswith(".") for part in path.parts):
        return False
    return suffixes is None or path.suffix.lower() in suffixes


@contextlib.asynccontextmanager
async def open_writer(settings: Settings, jsonl: Path) -> AsyncIterator[EventWriter]:
    if settings.kafka.bootstrap_servers is None:
        with _JsonlWriter.open(jsonl) as writer:
            yield writer
        return
    producer = AIOKafkaProducer(**connection_options(settings.kafka), acks="all", linger_ms=20)
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        raise BrokerUnavailable(f"cannot reach {settings.kafka.bootstrap_servers}: {error}") from error
    try:
        kafka_writer = _KafkaWriter(producer, settings.kafka.input_topic)
        yield kafka_writer
        await kafka_writer.drain()
    finally:
        await producer.stop()


class _KafkaWriter:
    """Pipelined sends (up to ``_MAX_PENDING_SENDS`` unacknowledged), keyed by source URL."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._pending: deque[asyncio.Future[object]] = deque()
        self.target = f"Kafka topic {topic}"

    async def write(self, event: FrameEvent) -> None:
        value = event.model_dump_json(exclude_none=True).encode()
        try:
            self._pending.append(await self._producer.send(self._topic, value, key=event.source.encode()))
            while len(self._pending) > _MAX_PENDING_SENDS:
                await self._pending.popleft()
        except KafkaError as error:
            raise BrokerUnavailable(f"cannot publish to {self._topic}: {error!r}") from error

    async def drain(self) -> None:
        try:
            while self._pending:
                await self._pending.popleft()
        except KafkaError as error:
            raise BrokerUnavailable(f"cannot publish to {self._topic}: {error!r}") from error


class _JsonlWriter:
    """One event per line, written to a temporary file and renamed over ``path`` once complete."""

    def __init__(self, handle: IO[bytes], path: Path) -> None:
        self._handle = handle
        self.target = str(path)

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[_JsonlWriter]:
        partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with partial.open("wb") as handle:
                yield cls(handle, path)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    async def write(self, event: FrameEvent) -> None:
        self._handle.write(event.model_dump_json(exclude_none=True).encode() + b"\n")

"""`anonymizer replay`: re-publish dead letters to the input, filtered by error kind and time, idempotently.

A dead letter is replayed as the FrameEvent it failed on (parsed from its original payload and headers, the one
whose id it names), so the event id is the original's and the processor's outputs overwrite themselves. Letters
whose original message held no such event (it did not parse, or its payload was dropped) are skipped as
``not_replayable``: publishing them unchanged would fail the same way.

"Already replayed" is remembered where the letters are:

- the dead-letter topic (read from the beginning up to the letters that were there when the command started) keeps
  one committed consumer group per error kind, ``<group>.<kind>``: its offset is the point up to which that kind's
  letters were handled, so replaying one kind never hides the others from a later run;
- a dead-letter file keeps ``<file>.replayed`` beside it, the SHA-256 of every replayed line.

Both are written only after every selected letter was published (acknowledged, or the events file renamed into
place): a failure records nothing, and the next run publishes again (at least once, never silently lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from tqdm import tqdm

from processor.errors import BrokerUnavailable, ProcessorError
from processor.settings import Settings
from processor.stream.enqueue import EventWriter, open_writer
from processor.stream.kafka import connection_options
from processor.stream.messages import parse_message
from schemas.events import DeadLetter, FrameEvent

log = logging.getLogger(__name__)

_POLL_MS = 1000
_STALL_S = 30.0
"""A read that gets nothing this long while short of the end offsets fails (aiokafka retries a lost broker
silently)."""


class Skip(StrEnum):
    """Why a dead letter read was not replayed (the summary's ``skipped`` keys)."""

    unparsable = "unparsable"  # not a dead letter at all
    kind = "kind"  # --kind left it out
    already_replayed = "already_replayed"
    before_since = "before_since"
    after_until = "after_until"
    not_replayable = "not_replayable"  # the original message holds no event to replay


@dataclass(frozen=True)
class Selection:
    """Which dead letters to replay: ``kinds`` (None = every kind) failed within [``since``, ``until``]."""

    kinds: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def skip(self, letter: DeadLetter) -> Skip | None:
        """Why the filters leave ``letter`` out, or None."""
        if self.kinds is not None and letter.error_kind not in self.kinds:
            return Skip.kind
        if self.since is not None and letter.failed_at < self.since:
            return Skip.before_since
        if self.until is not None and letter.failed_at > self.until:
            return Skip.after_until
        return None


@dataclass
class ReplaySummary:
    source: str
    target: str
    dry_run: bool
    read: int = 0
    selected: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, kind: str, what: str) -> None:
        self.kinds.setdefault(kind, Counter())[what] += 1

    def line(self) -> str:
        """The summary as one JSON line (stable keys; every skip reason present, 0 when none)."""
        return orjson.dumps(
            {
                "source": self.source,
                "target": self.target,
                "dry_run": self.dry_run,
                "read": self.read,
                "selected": self.selected,
                "replayed": self.replayed,
                "skipped": {reason.value: self.skipped[reason] for reason in Skip},
                "kinds": {kind: dict(sorted(counts.items())) for kind, counts in sorted(self.kinds.items())},
                "seconds": round(self.seconds, 3),
            }
        ).decode()


@dataclass
class _Candidate:
    """A dead letter read, with what it replays as (None when it is skipped)."""

    letter: DeadLetter | None
    event: FrameEvent | None = None
    skip: Skip | None = None


def _letter(raw: bytes) -> DeadLetter | None:
    try:
        return DeadLetter.model_validate_json(raw)
    except ValidationError:
        return None


def _examine(letter: DeadLetter | None, selection: Selection, already: Callable[[DeadLetter], bool]) -> _Candidate:
    """What to do with one letter read; ``already`` (asked only of letters of a selected kind) tells whether it
    was replayed before."""
    if letter is None:
        return _Candidate(None, skip=Skip.unparsable)
    if selection.kinds is not None and letter.error_kind not in selection.kinds:
        return _Candidate(letter, skip=Skip.kind)
    if already(letter):
        return _Candidate(letter, skip=Skip.already_replayed)
    reason = selection.skip(letter)
    if reason is not None:
        return _Candidate(letter, skip=reason)
    event = _original_event(letter)
    return _Candidate(letter, event, None if event is not None else Skip.not_replayable)


def _original_event(letter: DeadLetter) -> FrameEvent | None:
    """The event of the original message that failed (a notification may hold several), or None."""
    if letter.event_id is None or letter.payload_base64 is None:
        return None
    try:
        events = parse_message(letter.payload(), letter.original_headers())
    except (ProcessorError, ValueError):  # ValueError: bad base64 in a hand-edited letter
        return None
    return next((event for event in events if event.id == letter.event_id), None)


def _tally(summary: ReplaySummary, candidate: _Candidate) -> None:
    summary.read += 1
    if candidate.skip is not None:
        summary.skipped[candidate.skip] += 1
    else:
        summary.selected += 1
    if candidate.letter is not None:  # an unparsable letter has no kind
        kind = candidate.letter.error_kind
        summary.count(kind, "read")
        if candidate.skip is not None:
            summary.count(kind, f"skipped_{candidate.skip}")


async def _publish(writer: EventWriter | None, summary: ReplaySummary, candidate: _Candidate) -> None:
    if writer is None or candidate.event is None or candidate.letter is None:
        return
    await writer.write(candidate.event)
    summary.replayed += 1
    summary.count(candidate.letter.error_kind, "replayed")


@contextlib.asynccontextmanager
async def _writer(settings: Settings, jsonl: Path, dry_run: bool) -> AsyncIterator[EventWriter | None]:
    if dry_run:
        yield None
        return
    async with open_writer(settings, jsonl) as writer:
        yield writer


def target_name(settings: Settings, jsonl: Path) -> str:
    """Where replayed events go: the input topic with Kafka, else the events file for ``run --inbox``."""
    if settings.kafka.bootstrap_servers is not None:
        return f"Kafka topic {settings.kafka.input_topic}"
    return str(jsonl)


# --- the dead-letter file of the embedded sink --------------------------------------------------------------------


def record_path(dead_letter_file: Path) -> Path:
    """``completions.dead-letter.jsonl`` → ``completions.dead-letter.jsonl.replayed``."""
    return dead_letter_file.with_name(dead_letter_file.name + ".replayed")


async def replay_file(
    path: Path,
    settings: Settings,
    selection: Selection,
    *,
    jsonl: Path = Path("replay.jsonl"),
    dry_run: bool = False,
    progress: bool = True,
) -> ReplaySummary:
    """Replay the dead letters of a JSON-lines dead-letter file (one letter per line) not replayed before.

    Raises FileNotFoundError when ``path`` does not exist, BrokerUnavailable when publishing fails (then nothing is
    recorded as replayed)."""
    started = time.monotonic()
    lines, done = await asyncio.to_thread(_read_file, path)
    summary = ReplaySummary(str(path), target_name(settings, jsonl), dry_run)
    published: list[str] = []
    bar = tqdm(desc="replay", unit="dl", total=len(lines), file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        async with _writer(settings, jsonl, dry_run) as writer:
            for line in lines:
                digest = hashlib.sha256(line).hexdigest()
                candidate = _examine(_letter(line), selection, functools.partial(_recorded, done, digest))
                _tally(summary, candidate)
                if candidate.skip is None:
                    await _publish(writer, summary, candidate)
                    published.append(digest)
                    done.add(digest)  # the same line twice is replayed once
                bar.update()
    finally:
        bar.close()
    if not dry_run and published:  # only once everything is published: a failure above records nothing
        await asyncio.to_thread(_record, record_path(path), published)
    summary.seconds = time.monotonic() - started
    return summary


def _read_file(path: Path) -> tuple[list[bytes], set[str]]:
    """The file's non-empty lines, and the digests of those replayed before."""
    lines = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    record = record_path(path)
    return lines, set(record.read_text().split()) if record.exists() else set()


def _recorded(done: set[str], digest: str, letter: DeadLetter) -> bool:
    return digest in done


def _record(record: Path, digests: list[str]) -> None:
    with record.open("a") as handle:
        handle.write("".join(f"{digest}\n" for digest in digests))
        handle.flush()
        os.fsync(handle.fileno())


# --- the dead-letter topic ----------------------------------------------------------------------------------------


class _Cursors:
    """One committed consumer group per error kind, ``<group>.<kind>``, joined lazily (manual assignment, no
    membership): where each kind's letters of each partition were handled up to."""

    def __init__(self, settings: Settings, group: str, partitions: list[TopicPartition]) -> None:
        self._options = connection_options(settings.kafka)
        self._group = group
        self._partitions = partitions
        self._consumers: dict[str, AIOKafkaConsumer] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._caps: dict[tuple[str, TopicPartition], int] = {}

    async def committed(self, kind: str, partition: TopicPartition) -> int:
        if kind not in self._consumers:
            consumer = AIOKafkaConsumer(group_id=f"{self._group}.{kind}", enable_auto_commit=False, **self._options)
            self._consumers[kind] = consumer
            await consumer.start()
            consumer.assign(self._partitions)
            consumer.pause(*self._partitions)  # it only keeps offsets; the reader fetches
            self._committed[kind] = {tp: await consumer.committed(tp) or 0 for tp in self._partitions}
        return self._committed[kind][partition]

    def cap(self, kind: str, partition: TopicPartition, offset: int) -> None:
        """Hold ``kind``'s cursor on ``partition`` at ``offset`` (a letter --until left for a later run)."""
        self._caps.setdefault((kind, partition), offset)

    def capped(self, kind: str, partition: TopicPartition) -> bool:
        return (kind, partition) in self._caps

    async def commit(self, upto: dict[TopicPartition, int]) -> None:
        """Move every kind's cursor to ``upto`` (or its cap), never back."""
        for kind, consumer in self._consumers.items():
            points = {tp: min(offset, self._caps.get((kind, tp), offset)) for tp, offset in upto.items()}
            offsets = {tp: offset for tp, offset in points.items() if offset > self._committed[kind][tp]}
            if offsets:
                await consumer.commit(offsets)
                self._committed[kind].update(offsets)

    async def close(self) -> None:
        for consumer in self._consumers.values():
            await consumer.stop()


async def replay_topic(
    settings: Settings,
    selection: Selection,
    *,
    group: str | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> ReplaySummary:
    """Replay the letters of ``kafka.dead_letter_topic`` that were there when called and not replayed before.

    :param group: the cursors' group prefix (default ``kafka.replay_group_id``).
    Raises BrokerUnavailable when the broker cannot be read or published to (then nothing is committed).
    """
    started = time.monotonic()
    kafka = settings.kafka
    summary = ReplaySummary(f"Kafka topic {kafka.dead_letter_topic}", target_name(settings, Path()), dry_run)
    reader = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **connection_options(kafka))
    cursors: _Cursors | None = None
    bar = tqdm(desc="replay", unit="dl", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        await reader.start()
        await reader.topics()  # refreshes the metadata
        numbers = reader.partitions_for_topic(kafka.dead_letter_topic) or set()
        partitions = [TopicPartition(kafka.dead_letter_topic, number) for number in sorted(numbers)]
        if partitions:
            cursors = _Cursors(settings, group or kafka.replay_group_id, partitions)
            async with _writer(settings, Path(), dry_run) as writer:
                upto = await _read(reader, partitions, selection, cursors, writer, summary, bar)
            if not dry_run:
                await cursors.commit(upto)
    except KafkaError as error:
        raise BrokerUnavailable(f"cannot replay from {kafka.dead_letter_topic}: {error!r}") from error
    finally:
        bar.close()
        if cursors is not None:
            await cursors.close()
        await reader.stop()
    summary.seconds = time.monotonic() - started
    return summary


async def _read(
    reader: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    selection: Selection,
    cursors: _Cursors,
    writer: EventWriter | None,
    summary: ReplaySummary,
    bar: Any,
) -> dict[TopicPartition, int]:
    """Read every partition from the beginning up to the letters that were there at the start (its end offset
    then, and no record stamped later than the start: some brokers under-report end offsets), publishing what is
    selected. Returns, per partition, the offset up to which it was read."""
    started_ms = int(time.time() * 1000)
    reader.assign(partitions)
    await reader.seek_to_beginning(*partitions)
    ends = await reader.end_offsets(partitions)
    upto = dict.fromkeys(partitions, 0)
    finished: set[TopicPartition] = set()
    stalled_since = time.monotonic()
    while len(finished) < len(partitions):
        batches = await reader.getmany(*(tp for tp in partitions if tp not in finished), timeout_ms=_POLL_MS)
        if batches:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > _STALL_S:
            raise BrokerUnavailable(f"{partitions[0].topic}: nothing read for {_STALL_S:.0f} s, short of its end")
        for partition, records in batches.items():
            for record in records:
                if record.timestamp > started_ms:  # appended after the start: a later run's
                    finished.add(partition)
                    reader.pause(partition)
                    break
                candidate = await _examine_record(record.value, partition, record.offset, selection, cursors)
                _tally(summary, candidate)
                if candidate.skip is None:
                    await _publish(writer, summary, candidate)
                upto[partition] = record.offset + 1
                bar.update()
        if not batches:
            await _caught_up(reader, ends, finished, upto)
    return upto


async def _caught_up(
    reader: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    finished: set[TopicPartition],
    upto: dict[TopicPartition, int],
) -> None:
    """After a poll that brought nothing: a partition is done once it reached its end offset of the start."""
    for partition, end in ends.items():
        position = await reader.position(partition)
        if partition not in finished and position >= end:
            upto[partition] = max(upto[partition], position)
            finished.add(partition)


async def _examine_record(
    value: bytes | None, partition: TopicPartition, offset: int, selection: Selection, cursors: _Cursors
) -> _Candidate:
    """:func:`_examine` for one record of the topic: replayed before when under its kind's cursor; a letter after
    --until holds its kind's cursor there, and every later letter of the kind waits with it (so none is published
    now and again by the run that moves the cursor on)."""
    letter = _letter(value or b"")
    committed = None
    if letter is not None and (selection.kinds is None or letter.error_kind in selection.kinds):
        committed = await cursors.committed(letter.error_kind, partition)
    candidate = _examine(letter, selection, lambda _letter: committed is not None and offset < committed)
    if candidate.letter is None or candidate.skip in {Skip.kind, Skip.already_replayed}:
        return candidate
    kind = candidate.letter.error_kind
    if candidate.skip is Skip.after_until:
        cursors.cap(kind, partition, offset)
    elif cursors.capped(kind, partition):
        return _Candidate(candidate.letter, skip=Skip.after_until)
    return candidate

"""A Kafka consumer-group member as a source: records of ``kafka.input_topic``, acknowledged by contiguous offset
commits.

The offset tracker is this source's own (one owner for the commit points): the loop tracks a record's events here
and marks them done; :meth:`KafkaSource.commit` commits the points that moved. Commits are manual: Kafka's
auto-commit would commit offsets of events still in flight.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from processor import metrics
from processor.errors import BrokerUnavailable
from processor.settings import KafkaSettings
from processor.stream.flow import Transition
from processor.stream.kafka import connection_options
from processor.stream.offsets import OffsetTracker
from processor.stream.sources.base import Done, Record

log = logging.getLogger(__name__)

_FETCH_ERROR_PAUSE_S = 1.0
_PROBE_TIMEOUT_S = 2.0


class KafkaSource:
    """A consumer-group member on ``settings.input_topic``; an async context manager (joins on enter, leaves on
    exit, committing nothing on exit: the loop commits explicitly when it drained).

    On revoke it commits what is done of the revoked partitions and forgets them: their in-flight events may
    still finish and publish, but can no longer move a commit point (the new owner replays them). After every
    assignment the pause state is applied again to the new partitions.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._paused = False
        self._joined = False
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Self:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            **connection_options(settings),
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            rebalance_timeout_ms=settings.rebalance_timeout_ms,
            max_poll_interval_ms=settings.max_poll_interval_ms,
        )
        try:
            await consumer.start()
            consumer.subscribe([settings.input_topic], listener=_Rebalance(self))
        except BaseException as error:
            await consumer.stop()  # closes what start() opened before failing
            if isinstance(error, KafkaError):
                raise BrokerUnavailable(f"cannot join {settings.bootstrap_servers}: {error}") from error
            raise
        self._consumer = consumer
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    @property
    def exhausted(self) -> bool:
        return False

    @property
    def assigned_partitions(self) -> int:
        return len(self._consumer.assignment()) if self._consumer is not None else 0

    @property
    def in_group(self) -> bool:
        return self._consumer is not None and self._joined

    async def reachable(self) -> bool:
        """A metadata request answered by any broker within :data:`_PROBE_TIMEOUT_S`."""
        try:
            await asyncio.wait_for(self.consumer.topics(), _PROBE_TIMEOUT_S)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("KafkaSource used outside 'async with'")
        return self._consumer

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        # Called while paused too: polling keeps this member in the group (max_poll_interval_ms).
        try:
            batches = await self.consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max(1, max_records))
        except KafkaError as error:
            log.warning("fetch failed (%s); retrying in %.1f s", error, _FETCH_ERROR_PAUSE_S)
            await asyncio.sleep(_FETCH_ERROR_PAUSE_S)
            return []
        return [
            Record(
                partition.topic,
                partition.partition,
                message.offset,
                message.key,
                message.value,
                tuple(message.headers or ()),
            )
            for partition, messages in batches.items()
            for message in messages
        ]

    def track(self, record: Record, events: int) -> Done:
        ticket = self._tracker.track(TopicPartition(record.topic, record.partition), record.offset, events)
        return functools.partial(self._tracker.done, ticket)

    def pending(self) -> int:
        return self._tracker.pending()

    def apply(self, transition: Transition) -> None:
        self._paused = transition is Transition.PAUSE
        assigned = self.consumer.assignment()
        if self._paused:
            self.consumer.pause(*assigned)
        else:
            self.consumer.resume(*assigned)
        metrics.set_paused_partitions(len(self.consumer.paused()))
        log.debug("%s %d partition(s)", transition.value, len(assigned))

    async def commit(self) -> None:
        assigned = self.consumer.assignment()
        await self._commit(assigned)
        for partition in assigned:  # lag = records between what was fetched and the high watermark
            highwater = self.consumer.highwater(partition)
            if highwater is not None:
                lag = highwater - await self.consumer.position(partition)
                metrics.set_consumer_lag(partition.topic, partition.partition, lag)

    async def _commit(self, partitions: Iterable[TopicPartition]) -> None:
        points = self._tracker.commit_points(partitions)
        if not points:
            return
        try:
            # Bounded: during a rebalance aiokafka waits for the group to settle, which may take long (or,
            # on a broker that never settles, forever); what is not committed now is committed next time.
            await asyncio.wait_for(self.consumer.commit(points), self._settings.commit_timeout_s)
        except (KafkaError, TimeoutError) as error:
            # Typically a rebalance in progress: the points come back with the next commit (if still ours).
            log.warning("commit of %s failed: %s", _describe(points), error)
            self._tracker.uncommitted(points)
        else:
            log.debug("committed %s", _describe(points))

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        await self._commit(partitions)
        self._tracker.forget(partitions)
        for partition in partitions:
            metrics.forget_partition(partition.topic, partition.partition)
        if partitions:
            log.info("revoked %d partition(s); their in-flight events will not be committed here", len(partitions))

    def assigned(self, partitions: set[TopicPartition]) -> None:
        self._joined = True  # called after every join, with an empty set for a member the group has no work for
        if self._paused and partitions:
            self.consumer.pause(*partitions)
        metrics.set_paused_partitions(len(self.consumer.paused()))
        log.info("assigned %d partition(s)%s", len(partitions), " (paused)" if self._paused else "")


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._source.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._source.assigned(set(assigned))


def _describe(points: dict[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(points.items()))

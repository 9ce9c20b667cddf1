"""Kafka helpers for integration tests: the Broker under test, its known gaps, fresh topics, produce and read back.

``consume_all`` reads without a consumer group (manual assignment from the beginning), so it needs no group
join and never disturbs the offsets a test asserts on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import RecordMetadata

from processor.settings import KafkaSettings

# Gaps checked with aiokafka 0.14 (see tests/README.md); a test naming one with @pytest.mark.known_gap("...") is
# an expected failure on the brokers listed here only, and strict xfail flags the day a broker fixes it.
KNOWN_GAPS: Mapping[str, Mapping[str, str]] = {
    "tansu": {
        "idempotent_producer": "InitProducerId answers UnknownError",
        "transactions": "InitProducerId answers UnknownError",
        "end_offsets": "ListOffsets counts record batches, not records (end_offsets, seek_to_end, 'latest')",
        "list_consumer_group_offsets": "OffsetFetch for all partitions drops the connection",
        "create_partitions": "CreatePartitions is not implemented",
    },
    "noida": {
        "auto_commit_second_member": "enable_auto_commit=True livelocks when a second member joins",
        "sigkill_member_expiry": "a SIGKILLed member is not expired within 60-90 s",
        "short_session_timeout": "session timeouts under 6000 ms are refused",
    },
}

# Group timing that makes joins and rebalances fast on each broker (joins take about session_timeout/2 on Tansu).
CONSUMER_TUNING: Mapping[str, Mapping[str, int]] = {
    "tansu": {"session_timeout_ms": 1000, "heartbeat_interval_ms": 100, "rebalance_timeout_ms": 1000},
    "noida": {"session_timeout_ms": 6000, "heartbeat_interval_ms": 200, "rebalance_timeout_ms": 6000},
}


@dataclass(frozen=True)
class Broker:
    """A running Kafka-protocol broker: its name (``tansu`` | ``noida``), bootstrap address and group timing."""

    name: str
    bootstrap: str
    consumer_tuning: Mapping[str, int] = field(default_factory=dict)

    def has_gap(self, gap: str) -> bool:
        return gap in KNOWN_GAPS[self.name]

    def kafka_settings(self, **overrides: Any) -> KafkaSettings:
        """Processor settings pointing at this broker, with its group timing; ``overrides`` win."""
        return KafkaSettings(**{"bootstrap_servers": self.bootstrap, **self.consumer_tuning, **overrides})

    def consumer(self, *topics: str, group_id: str | None = None, **overrides: Any) -> AIOKafkaConsumer:
        """An unstarted consumer with manual commits, reading from the earliest offset; the caller stops it."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            **(self.consumer_tuning if group_id is not None else {}),
            **overrides,
        }
        return AIOKafkaConsumer(*topics, **options)


@dataclass(frozen=True)
class Message:
    """One record to produce; plain ``bytes`` or ``None`` in :func:`produce` mean a value with no key or headers."""

    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None


def new_group_id() -> str:
    return f"group-{uuid.uuid4().hex}"


async def create_topic(broker: Broker, partitions: int = 1, *, prefix: str = "topic") -> str:
    """Create a fresh uuid-named topic with ``partitions`` partitions and wait until its metadata is visible."""
    name = f"{prefix}-{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
        deadline = time.monotonic() + 10.0
        while name not in await admin.list_topics():
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} not visible on {broker.name}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    return name


async def produce(
    broker: Broker, topic: str, messages: Iterable[bytes | Message | None], **producer_options: Any
) -> list[RecordMetadata]:
    """Send every message (batched), wait for every acknowledgement, return their metadata in order."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, **producer_options)
    await producer.start()
    try:
        pending = []
        for item in messages:
            message = item if isinstance(item, Message) else Message(item)
            pending.append(
                await producer.send(
                    topic,
                    message.value,
                    key=message.key,
                    headers=list(message.headers),
                    partition=message.partition,
                )
            )
        return list(await asyncio.gather(*pending))
    finally:
        await producer.stop()


async def consume_all(
    broker: Broker, topic: str, n: int, timeout_s: float = 20.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning of every partition until ``n`` records arrived or ``timeout_s`` passed.

    Returns every record fetched (possibly more than ``n``, or fewer on timeout: the caller asserts), sorted by
    partition and offset.
    """
    consumer = broker.consumer()
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions = await _partitions(consumer, topic, deadline)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while len(records) < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return sorted(records, key=lambda record: (record.partition, record.offset))


async def _partitions(consumer: AIOKafkaConsumer, topic: str, deadline: float) -> list[TopicPartition]:
    while True:
        await consumer.topics()  # refreshes metadata
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, number) for number in sorted(numbers)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no partitions in the metadata")
        await asyncio.sleep(0.05)

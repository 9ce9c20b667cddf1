"""Smoke tests of each Kafka-protocol broker with aiokafka: what the stream processor relies on works on both."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from tests.integration.kafka_helpers import Broker, Message, consume_all, create_topic, produce


async def test_records_keep_keys_headers_and_partitions(broker: Broker, topic: str) -> None:
    sent = [
        Message(f"value-{i}".encode(), key=f"key-{i}".encode(), headers=[("ce_id", f"{i}".encode())], partition=i % 3)
        for i in range(30)
    ]
    await produce(broker, topic, sent)

    records = await consume_all(broker, topic, 30, timeout_s=20)

    assert len(records) == 30
    by_value = {record.value: record for record in records}
    for message in sent:
        assert message.value is not None
        record = by_value[message.value]
        assert record.key == message.key
        assert list(record.headers) == list(message.headers)
        assert record.partition == message.partition


async def test_manual_commit_is_read_back_and_a_new_member_resumes_there(broker: Broker, group_id: str) -> None:
    topic = await create_topic(broker, 1)
    await produce(broker, topic, [f"{i}".encode() for i in range(20)])
    partition = TopicPartition(topic, 0)

    first = broker.consumer(topic, group_id=group_id)
    await first.start()
    try:
        seen = await _read(first, 10)
        await first.commit({partition: seen[9].offset + 1})
        assert await first.committed(partition) == 10
    finally:
        await first.stop()

    second = broker.consumer(topic, group_id=group_id)
    await second.start()
    try:
        assert await second.committed(partition) == 10
        resumed = await _read(second, 10)
    finally:
        await second.stop()
    assert [record.value for record in resumed] == [f"{i}".encode() for i in range(10, 20)]


async def test_paused_partition_is_not_fetched_until_resumed(broker: Broker) -> None:
    topic = await create_topic(broker, 2)
    paused, running = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = broker.consumer()
    await consumer.start()
    try:
        consumer.assign([paused, running])
        await consumer.seek_to_beginning(paused, running)
        consumer.pause(paused)
        await produce(broker, topic, [Message(b"p", partition=0), Message(b"r", partition=1)])

        fetched: list[bytes | None] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # keeps polling while paused, as the processor does
            for tp, batch in (await consumer.getmany(timeout_ms=100)).items():
                assert tp == running
                fetched.extend(record.value for record in batch)
        assert fetched == [b"r"]
        assert consumer.paused() == {paused}

        consumer.resume(paused)
        after = await _read(consumer, 1)
        assert [record.value for record in after] == [b"p"]
    finally:
        await consumer.stop()


@pytest.mark.known_gap("end_offsets")
async def test_end_offsets_count_records_of_batched_sends(broker: Broker) -> None:
    topic = await create_topic(broker, 1)
    await produce(broker, topic, [b"x"] * 20, linger_ms=50)
    consumer = broker.consumer()
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        assert await consumer.end_offsets([partition]) == {partition: 20}
    finally:
        await consumer.stop()


@pytest.mark.known_gap("idempotent_producer")
async def test_idempotent_producer_delivers(broker: Broker, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    try:
        await asyncio.wait_for(producer.start(), 10)
        await producer.send_and_wait(topic, b"once")
    finally:
        await producer.stop()
    records = await consume_all(broker, topic, 1, timeout_s=10)
    assert [record.value for record in records] == [b"once"]


async def _read(consumer: AIOKafkaConsumer, n: int, timeout_s: float = 20.0) -> list[ConsumerRecord[bytes, bytes]]:
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < n and time.monotonic() < deadline:
        for batch in (await consumer.getmany(timeout_ms=200, max_records=n - len(records))).values():
            records.extend(batch)
    assert len(records) == n, f"read {len(records)} of {n} records within {timeout_s} s"
    return sorted(records, key=lambda record: (record.partition, record.offset))

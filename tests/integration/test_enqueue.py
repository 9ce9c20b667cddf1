"""`enqueue` lists a real S3 bucket (moto) and publishes one FrameEvent per object to each real broker."""

from __future__ import annotations

from collections.abc import Callable

import obstore
from obstore.store import S3Store

from processor.settings import Settings, StorageSettings
from processor.stream.enqueue import enqueue
from processor.stream.messages import parse_message
from tests.integration.kafka_helpers import Broker, consume_all, create_topic

FRAMES = {"cam7/0001.jpg": 100, "cam7/0002.JPG": 200, "cam7/day 2/0003.png": 300, "cam8/0004.jpeg": 400}
NOT_FRAMES = ["cam7/metadata.json", "cam7/.thumbs/0001.jpg", "anonymized/0123456789abcdef/cam7/0001.jpg"]


async def test_enqueue_publishes_one_event_per_frame_and_a_rerun_repeats_the_same_ids(
    broker: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
) -> None:
    bucket = s3_bucket()
    for key, size in FRAMES.items():
        await obstore.put_async(s3_store(bucket), key, b"x" * size)
    for key in NOT_FRAMES:
        await obstore.put_async(s3_store(bucket), key, b"{}")
    topic = await create_topic(broker, 3)
    settings = Settings(kafka=broker.kafka_settings(input_topic=topic), storage=storage_settings)

    first = await enqueue(f"s3://{bucket}/", settings, configuration="faces", progress=False)
    second = await enqueue(f"s3://{bucket}/", settings, configuration="faces", progress=False)

    assert (first.events, first.skipped, first.bytes) == (4, 3, 1000)
    assert second.events == 4
    records = await consume_all(broker, topic, 8, timeout_s=20)
    assert len(records) == 8
    events = [event for record in records for event in parse_message(record.value, list(record.headers))]
    expected = {f"s3://{bucket}/{key}" for key in FRAMES}
    assert sorted(event.source for event in events) == sorted([*expected, *expected])
    assert {event.id for event in events} == expected
    assert {event.configuration for event in events} == {"faces"}
    assert all(record.key == event.source.encode() for record, event in zip(records, events, strict=True))
    assert len({(record.key, record.partition) for record in records}) == 4, "a rerun lands on the same partitions"

"""The SQS source against moto's SQS (on the S3 endpoint's port) and S3: S3 notifications and FrameEvents in,
outputs written, completion lines out, every message deleted; slow inference outlasting the visibility timeout
(the heartbeat keeps each message hidden: nothing is processed twice); and a real ``anonymizer run`` killed with
SIGKILL mid-run and restarted (nothing lost)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from obstore.store import S3Store
from pydantic import SecretStr

from processor.service import serve
from processor.settings import Settings, SqsSettings, StorageSettings
from processor.stream.sources.sqs import SqsSource
from processor.stream.worker import StreamStats
from schemas.events import CompletionEvent
from tests.inference_stubs import InferenceStub
from tests.integration.conftest import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY
from tests.integration.servers import free_port
from tests.integration.stream_support import (
    STUB_MODEL,
    ProcessorProcess,
    centre_is_black,
    frame_event,
    list_keys,
    processor_settings,
    read,
    s3_notification,
    stop_all,
    stub_model,
    tiny_frames,
    upload,
    wait_until,
)


@pytest.fixture
def sqs(s3_endpoint: str) -> Iterator[Any]:
    """A boto3 SQS client of moto's endpoint, to create queues and look into them (the processor uses its own)."""
    client = boto3.client(
        "sqs",
        endpoint_url=s3_endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    )
    yield client
    client.close()


def sqs_settings(settings: Settings, endpoint: str, queue_url: str, **options: Any) -> Settings:
    sqs = SqsSettings(
        queue_url=queue_url,
        endpoint=endpoint,
        region=S3_REGION,
        access_key_id=SecretStr(S3_ACCESS_KEY),
        secret_access_key=SecretStr(S3_SECRET_KEY),
        **options,
    )
    return settings.model_copy(update={"sqs": sqs})


def messages_left(sqs: Any, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def completions(settings: Settings) -> list[CompletionEvent]:
    path = settings.stream.completions_file
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [CompletionEvent.model_validate_json(line) for line in lines]


async def run_until(settings: Settings, count: int, timeout_s: float, linger_s: float = 0.0) -> StreamStats:
    """``serve`` until ``count`` completion lines are written (and ``linger_s`` more), then stopped like SIGTERM
    would."""
    stats, stop = StreamStats(), asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, stats=stats))
    try:
        await wait_until(lambda: task.done() or len(completions(settings)) >= count, timeout_s, f"{count} done")
        if task.done():
            task.result()
        await asyncio.sleep(linger_s)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return stats


async def test_notifications_and_frame_events_from_sqs_are_anonymized_completed_and_deleted(
    tmp_path: Path,
    s3_endpoint: str,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    sqs: Any,
) -> None:
    bucket = s3_bucket()
    frames = tiny_frames(5)
    keys = [f"cam 7/{index:06d}.jpg" for index in range(5)]
    await upload(s3_store(bucket), dict(zip(keys, frames, strict=True)))
    queue_url = sqs.create_queue(QueueName=f"frames-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    bodies = [
        s3_notification(bucket, keys[0:2]).value,
        s3_notification(bucket, keys[2:4], minio=True).value,
        frame_event("cam7-4", f"s3://{bucket}/{keys[4]}").value,
        orjson.dumps({"Event": "s3:TestEvent", "Bucket": bucket}),  # skipped: done at once, deleted too
    ]
    for body in bodies:
        assert body is not None
        sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())

    async with InferenceStub([stub_model()]) as stub:
        base = processor_settings(None, storage_settings, tmp_path, inference_urls=[stub.url])
        settings = sqs_settings(base, s3_endpoint, queue_url, visibility_timeout_s=30)
        stats = await run_until(settings, 5, 60)

    assert (stats.completed, stats.dead_lettered) == (5, 0)
    done = completions(settings)
    assert sorted(c.source for c in done) == sorted(f"s3://{bucket}/{key}" for key in keys)
    outputs = await list_keys(s3_store(bucket), "anonymized/")
    assert len(outputs) == 5
    for completion in done:
        assert centre_is_black(await read(s3_store(bucket), completion.output.split("/", 3)[3]))
    await wait_until(lambda: messages_left(sqs, queue_url) == 0, 10, "every message deleted")


async def test_slow_inference_longer_than_the_visibility_timeout_processes_each_event_once(
    tmp_path: Path,
    s3_endpoint: str,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    sqs: Any,
) -> None:
    """Inference takes 3.5 s, the visibility timeout is 2 s: without the heartbeat every message would reappear and
    be received and processed again while still in flight."""
    bucket = s3_bucket()
    keys = [f"slow/{index}.jpg" for index in range(3)]
    await upload(s3_store(bucket), dict(zip(keys, tiny_frames(3), strict=True)))
    queue_url = sqs.create_queue(QueueName=f"slow-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    for key in keys:
        body = s3_notification(bucket, [key]).value
        assert body is not None
        sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())

    async with InferenceStub([stub_model()], latency_s=3.5) as stub:
        base = processor_settings(None, storage_settings, tmp_path, inference_urls=[stub.url])
        settings = sqs_settings(base, s3_endpoint, queue_url, visibility_timeout_s=2)
        stats = await run_until(settings, 3, 60, linger_s=2.5)  # a message that reappeared is received by then
        predictions = stub.requests[f"/models/{STUB_MODEL}/predict"]

    assert (stats.completed, stats.dead_lettered) == (3, 0)
    assert predictions == 3, "an event was processed twice: its message became visible while in flight"
    assert len(completions(settings)) == 3
    await wait_until(lambda: messages_left(sqs, queue_url) == 0, 10, "every message deleted")


async def test_a_processor_killed_mid_run_and_restarted_completes_every_notification(
    tmp_path: Path,
    s3_endpoint: str,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    sqs: Any,
) -> None:
    """SIGKILL deletes nothing it had not finished: those messages reappear after the visibility timeout and the
    restarted processor completes them; every source ends with a completion and an output."""
    bucket = s3_bucket()
    count = 30
    keys = [f"crash/{index:03d}.jpg" for index in range(count)]
    frames = tiny_frames(4)
    await upload(s3_store(bucket), {key: frames[index % len(frames)] for index, key in enumerate(keys)})
    queue_url = sqs.create_queue(QueueName=f"crash-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    for start in range(0, count, 3):
        body = s3_notification(bucket, keys[start : start + 3]).value
        assert body is not None
        sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())

    processes: list[ProcessorProcess] = []
    async with InferenceStub([stub_model()], latency_s=0.2) as stub:
        base = processor_settings(None, storage_settings, tmp_path, inference_urls=[stub.url], max_in_flight=4)
        settings = sqs_settings(base, s3_endpoint, queue_url, visibility_timeout_s=3)
        predict = f"/models/{STUB_MODEL}/predict"
        try:
            first = ProcessorProcess(settings, tmp_path, "first")
            processes.append(await first.start())
            await wait_until(lambda: stub.requests[predict] >= 8, 60, "progress before the kill")
            first.signal(signal.SIGKILL)
            assert await first.wait(10) == -signal.SIGKILL
            done_before = {c.source for c in completions(settings)}
            assert len(done_before) < count, "the kill came too late to test anything"

            final = ProcessorProcess(settings, tmp_path, "final")
            processes.append(await final.start())
            sources = {f"s3://{bucket}/{key}" for key in keys}
            await wait_until(lambda: {c.source for c in completions(settings)} >= sources, 90, "every source done")
            await wait_until(lambda: messages_left(sqs, queue_url) == 0, 20, "every message deleted")
            final.signal(signal.SIGTERM)
            assert await final.wait(30) == 0, final.log()[-3000:]
        finally:
            await stop_all(processes)

    outputs = await list_keys(s3_store(bucket), "anonymized/")
    assert len(outputs) == count


async def test_the_source_is_reachable_while_its_receives_are_answered(s3_endpoint: str, sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName=f"frames-{uuid.uuid4().hex}")["QueueUrl"]
    answered = sqs_settings(Settings(), s3_endpoint, queue_url, wait_time_s=0).sqs
    gone = answered.model_copy(update={"endpoint": f"http://127.0.0.1:{free_port()}"})  # nothing listens there
    async with SqsSource(answered) as source:
        assert await source.fetch(10, 1.0) == []
        assert await source.reachable()
    async with SqsSource(gone) as source:
        assert await source.reachable(), "until a receive fails (the first may wait a whole long poll)"
        assert await source.fetch(10, 1.0) == []
        assert not await source.reachable()

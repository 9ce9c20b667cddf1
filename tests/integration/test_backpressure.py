"""Backpressure: a slow inference service and a large backlog must not pull the backlog into memory."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from obstore.store import S3Store

from processor.settings import StorageSettings
from tests.inference_stubs import InferenceStub
from tests.integration.kafka_helpers import Broker, new_group_id, produce
from tests.integration.stream_support import (
    STUB_MODEL,
    ProcessorProcess,
    frame_event,
    new_topics,
    processor_settings,
    stop_all,
    stub_model,
    tiny_frames,
    upload,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)

BOUND = 16
BACKLOG = 5000
PREDICT = f"/models/{STUB_MODEL}/predict"


@pytest.fixture
async def processes() -> AsyncIterator[list[ProcessorProcess]]:
    started: list[ProcessorProcess] = []
    yield started
    await stop_all(started)


async def test_frames_in_flight_stay_bounded_and_memory_flat_under_a_backlog(
    tansu: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
    processes: list[ProcessorProcess],
) -> None:
    bucket = s3_bucket()
    frames = tiny_frames()
    await upload(s3_store(bucket), {f"frames/{i}.jpg": frames[i % len(frames)] for i in range(64)})
    topics = await new_topics(tansu, 3)
    events = [frame_event(f"e-{i}", f"s3://{bucket}/frames/{i % 64}.jpg") for i in range(BACKLOG)]
    await produce(tansu, topics.input, events)

    async with InferenceStub([stub_model()], latency_s=0.2) as stub:  # at most BOUND / 0.2 s = 80 frames/s
        settings = processor_settings(
            tansu,
            storage_settings,
            tmp_path,
            topics=topics,
            group_id=new_group_id(),
            inference_urls=[stub.url],
            max_in_flight=BOUND,
        )
        process = ProcessorProcess(settings, tmp_path, "backpressure")
        processes.append(await process.start())
        await wait_until(lambda: stub.requests[PREDICT] >= 100, 60, "the processor to warm up")
        samples: list[tuple[int, float]] = []
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            samples.append((stub.requests[PREDICT], process.rss_mb()))
            await asyncio.sleep(0.5)
        process.signal(signal.SIGTERM)
        assert await process.wait(30) == 0, process.log()[-3000:]

    processed = samples[-1][0] - samples[0][0]
    assert processed > 300, "frames kept flowing"
    assert samples[-1][0] < BACKLOG / 2, "the backlog outlasts the test: the consumer had to pause"
    assert stub.in_flight.most <= BOUND, f"{stub.in_flight.most} inference requests at once"
    ((peak, pending),) = re.findall(r"at most (\d+) frames in flight, (\d+) events pending", process.log())
    assert 0 < int(peak) <= BOUND
    assert int(pending) <= BOUND, "the consumer fetches no more than the bound allows"
    first_half = [rss for _, rss in samples[: len(samples) // 2]]
    second_half = [rss for _, rss in samples[len(samples) // 2 :]]
    growth = max(second_half) - max(first_half)
    assert growth < 15, f"RSS grew by {growth:.1f} MiB while {processed} frames passed ({samples})"

"""The stream processor in-process against real brokers (both), a real S3 endpoint and a stub inference service over
HTTP: every event kind, bad events, and two members of one group."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import av
import orjson
import pytest
from obstore.store import S3Store

from processor.settings import Settings, StorageSettings
from processor.stream.worker import StreamStats
from schemas.events import CompletionEvent, DeadLetter, EventKind
from tests.frames import ASTRONAUT_FACE, GRACE_HOPPER_FACE
from tests.inference_stubs import InferenceStub
from tests.integration.kafka_helpers import Broker, Message, consume_all, new_group_id, produce
from tests.integration.stream_support import (
    Processor,
    Topics,
    builtin_configuration,
    centre_is_black,
    cloud_event,
    committed_offsets,
    ends,
    frame_event,
    list_keys,
    new_topics,
    processor_settings,
    read,
    region_change,
    s3_notification,
    stub_configuration,
    stub_model,
    tiny_frames,
    upload,
    wait_until,
)
from tests.videos import Clip, write_clip

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def start() -> AsyncIterator[Callable[[Settings], Processor]]:
    """``start(settings)``: a processor running in the background; any still running is stopped at teardown."""
    started: list[Processor] = []

    def make(settings: Settings) -> Processor:
        started.append(Processor(settings))
        return started[-1]

    yield make
    for processor in started:
        if not processor.task.done():
            processor.stop.set()
            await asyncio.wait_for(asyncio.gather(processor.task, return_exceptions=True), 30)


async def run_with_stub(
    start: Callable[[Settings], Processor],
    broker: Broker,
    storage_settings: StorageSettings,
    tmp_path: Path,
    topics: Topics,
    group_id: str,
    *,
    count: int,
    timeout_s: float,
) -> tuple[Settings, StreamStats]:
    """A processor against a fresh stub inference service until ``count`` events are done, then stopped."""
    async with InferenceStub([stub_model()]) as stub:
        settings = processor_settings(
            broker, storage_settings, tmp_path, topics=topics, group_id=group_id, inference_urls=[stub.url]
        )
        processor = start(settings)
        await processor.wait_for(count, timeout_s)
        return settings, await processor.close()


async def test_500_mixed_events_are_anonymized_completed_and_committed(
    broker: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
    start: Callable[[Settings], Processor],
    astronaut_jpeg: bytes,
    grace_hopper_jpeg: bytes,
) -> None:
    bucket = s3_bucket()
    store = s3_store(bucket)
    topics = await new_topics(broker, 3)
    group_id = new_group_id()
    frames = tiny_frames()
    objects: dict[str, bytes] = {}
    messages: list[Message] = []
    # 10 real photos, inline configuration of the built-in detectors (faces must really be found)
    photos = {"astronaut": (astronaut_jpeg, ASTRONAUT_FACE), "grace_hopper": (grace_hopper_jpeg, GRACE_HOPPER_FACE)}
    for index in range(10):
        name = list(photos)[index % 2]
        key = f"photos/{name}-{index}.jpg"
        objects[key] = photos[name][0]
        messages.append(frame_event(f"photo-{index}", f"s3://{bucket}/{key}", builtin_configuration()))
    # 160 frame events naming the stored configuration "stub"
    for index in range(160):
        key = f"cam 7/frame-{index:04d}.jpg"
        objects[key] = frames[index % len(frames)]
        messages.append(frame_event(f"frame-{index}", f"s3://{bucket}/{key}", "stub"))
    # 170 objects announced by bucket notifications: 50 AWS with one record, 60 MinIO with two (default configuration)
    notified = [f"uploads/{index}+x y.jpg" for index in range(170)]
    for key in notified:
        objects[key] = frames[len(key) % len(frames)]
    messages += [s3_notification(bucket, [key]) for key in notified[:50]]
    messages += [s3_notification(bucket, notified[i : i + 2], minio=True) for i in range(50, 170, 2)]
    # 160 CloudEvents, half structured, half binary (default configuration)
    for index in range(160):
        key = f"cloud/{index}.jpg"
        objects[key] = frames[index % len(frames)]
        messages.append(cloud_event(f"cloud-{index}", f"s3://{bucket}/{key}", binary=index % 2 == 1))
    # and an S3 test event, which asks for nothing (its offset is done at once)
    messages.append(Message(orjson.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket})))
    random.Random(4).shuffle(messages)
    await upload(store, objects)
    metadata = await produce(broker, topics.input, messages)

    settings, stats = await run_with_stub(
        start, broker, storage_settings, tmp_path, topics, group_id, count=500, timeout_s=120
    )

    assert (stats.completed, stats.dead_lettered) == (500, 0)
    assert stats.peak_in_flight <= settings.stream.max_in_flight
    records = await consume_all(broker, topics.completions, 500)
    completions = [CompletionEvent.model_validate_json(record.value or b"") for record in records]
    assert len(completions) == 500
    assert {c.source for c in completions} == {f"s3://{bucket}/{key}" for key in objects}
    assert all(record.key == c.source.encode() for record, c in zip(records, completions, strict=True))
    outputs = await list_keys(store, "anonymized")
    assert len(outputs) == 500
    assert {f"s3://{bucket}/{key}" for key in outputs} == {c.output for c in completions}
    assert await committed_offsets(broker, topics.input, group_id, 3) == ends(metadata, 3)

    by_source = {c.source.removeprefix(f"s3://{bucket}/"): c for c in completions}
    for key in ("cam 7/frame-0003.jpg", "uploads/7+x y.jpg", "uploads/120+x y.jpg", "cloud/11.jpg"):
        assert centre_is_black(await read(store, by_source[key].output.removeprefix(f"s3://{bucket}/"))), key
    for index in range(10):
        name = list(photos)[index % 2]
        completion = by_source[f"photos/{name}-{index}.jpg"]
        assert completion.result.counts.get("face") == 1
        output = await read(store, completion.output.removeprefix(f"s3://{bucket}/"))
        source, face = photos[name]
        assert region_change(source, output, face) > 12, "the face must be hidden"
        assert region_change(source, output, (0, 500, 100, 512)) < 3, "the far background must stay"


async def test_bad_events_are_dead_lettered_each_with_its_reason_and_the_good_ones_around_them_complete(
    broker: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
    start: Callable[[Settings], Processor],
) -> None:
    bucket = s3_bucket()
    store = s3_store(bucket)
    topics = await new_topics(broker, 1)  # one partition: a stalled event would hold back every good one after it
    group_id = new_group_id()
    frame = tiny_frames(1)[0]
    await upload(
        store, {f"good/{index}.jpg": frame for index in range(7)} | {"corrupt.jpg": b"\xff\xd8\xff\xe0garbage"}
    )
    good = [frame_event(f"good-{index}", f"s3://{bucket}/good/{index}.jpg") for index in range(7)]
    # (kind, message, what the reason must name)
    bad = [
        ("invalid_event", Message(b"this is not JSON {", key=b"not-json"), "not valid JSON"),
        (
            "invalid_event",
            Message(orjson.dumps({"id": "x", "sauce": "s3://x/y.jpg"}), key=b"schema"),
            "FrameEvent.source",
        ),
        ("object_not_found", frame_event("missing", f"s3://{bucket}/nowhere.jpg"), "nowhere.jpg"),
        ("image_undecodable", frame_event("corrupt", f"s3://{bucket}/corrupt.jpg"), "not a readable image"),
        (
            "unknown_label",
            frame_event("unicorn", f"s3://{bucket}/good/0.jpg", stub_configuration(label="unicorn")),
            "unicorn",
        ),
        (
            "unregistered_url",
            frame_event("unregistered", f"s3://{bucket}/good/0.jpg", stub_configuration(url="http://127.0.0.1:9/")),
            "http://127.0.0.1:9/",
        ),
    ]
    messages = [good[0]]
    for index, (_, message, _) in enumerate(bad):
        messages += [message, good[index + 1]]
    metadata = await produce(broker, topics.input, messages)

    _, stats = await run_with_stub(start, broker, storage_settings, tmp_path, topics, group_id, count=13, timeout_s=60)

    assert (stats.completed, stats.dead_lettered) == (7, 6)
    letters = [
        DeadLetter.model_validate_json(r.value or b"") for r in await consume_all(broker, topics.dead_letters, 6)
    ]
    assert len(letters) == 6
    by_offset = {letter.source_offset: letter for letter in letters}
    for index, (kind, message, reason) in enumerate(bad):
        letter = by_offset[1 + 2 * index]  # bad events sit at the odd offsets
        assert letter.error_kind == kind
        assert reason.lower() in letter.error_message.lower(), letter.error_message
        assert letter.payload() == message.value  # the original bytes, for a replay after a fix
        assert (letter.source_topic, letter.source_partition) == (topics.input, 0)
        assert letter.attempts == 1
    completions = await consume_all(broker, topics.completions, 7)
    assert sorted(CompletionEvent.model_validate_json(r.value or b"").id for r in completions) == [
        f"good-{index}" for index in range(7)
    ]
    assert await committed_offsets(broker, topics.input, group_id, 1) == ends(metadata, 1)


async def test_two_processors_in_one_group_split_the_partitions_and_together_process_everything(
    broker: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
    start: Callable[[Settings], Processor],
) -> None:
    if broker.has_gap("sigkill_member_expiry"):
        # Seen on noida: a commit racing the second member's join (or the commit on revoke) fails with
        # IllegalGeneration where Kafka answers RebalanceInProgress; aiokafka then rejoins under a new member id,
        # and noida never expires the abandoned one (the gap of a SIGKILLed member), so the group never settles.
        pytest.xfail("noida never expires a member id abandoned after a failed commit: the group never settles")
    bucket = s3_bucket()
    store = s3_store(bucket)
    topics = await new_topics(broker, 4)
    group_id = new_group_id()
    frames = tiny_frames()
    count = 240
    objects = {f"frames/{index}.jpg": frames[index % len(frames)] for index in range(count)}
    await upload(store, objects)
    metadata = await produce(
        broker, topics.input, [frame_event(f"e-{i}", f"s3://{bucket}/frames/{i}.jpg") for i in range(count)]
    )

    async with InferenceStub([stub_model()], latency_s=0.05) as stub:
        settings = processor_settings(
            broker,
            storage_settings,
            tmp_path,
            topics=topics,
            group_id=group_id,
            inference_urls=[stub.url],
            max_in_flight=4,
        )
        first = start(settings)
        await first.wait_for(40, 60)
        second = start(settings)

        async def backlog_committed() -> bool:  # not a count of events done: replays after the rebalance count twice
            return await committed_offsets(broker, topics.input, group_id, 4) == ends(metadata, 4)

        await wait_until(backlog_committed, 120, "both members to finish and commit the backlog", interval_s=0.5)
        first_stats, second_stats = await first.close(), await second.close()

    assert first_stats.completed > 0 and second_stats.completed > 0, "the second member must get partitions"
    # The pause is re-applied to partitions assigned while paused: neither member ever took more than the bound.
    assert max(first_stats.peak_pending, second_stats.peak_pending) <= settings.stream.max_in_flight
    assert first_stats.dead_lettered == second_stats.dead_lettered == 0
    completions = await consume_all(broker, topics.completions, count)
    ids = Counter(CompletionEvent.model_validate_json(r.value or b"").id for r in completions)
    assert set(ids) == {f"e-{i}" for i in range(count)}
    # Only events in flight when the partitions moved may run twice.
    assert sum(ids.values()) - count <= 2 * settings.stream.max_in_flight
    assert first_stats.completed + second_stats.completed == sum(ids.values())
    assert len(await list_keys(store, "anonymized")) == count
    assert await committed_offsets(broker, topics.input, group_id, 4) == ends(metadata, 4)


async def test_a_video_announced_by_a_notification_is_anonymized_into_an_mp4_with_a_completion(
    tansu: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
    start: Callable[[Settings], Processor],
) -> None:
    bucket = s3_bucket()
    store = s3_store(bucket)
    topics = await new_topics(tansu, 1)
    clip = Clip(frames=12, size=(480, 270), face_height=60)
    write_clip(tmp_path / "clip.avi", clip, audio=None)
    await upload(store, {"clips/cam 1.avi": (tmp_path / "clip.avi").read_bytes()})
    await produce(tansu, topics.input, [s3_notification(bucket, ["clips/cam 1.avi"])])

    _, stats = await run_with_stub(
        start, tansu, storage_settings, tmp_path, topics, new_group_id(), count=1, timeout_s=60
    )

    assert (stats.completed, stats.dead_lettered) == (1, 0)
    (record,) = await consume_all(tansu, topics.completions, 1)
    completion = CompletionEvent.model_validate_json(record.value or b"")
    assert (completion.kind, completion.frames) == (EventKind.video, 12)
    assert (completion.keyframes, completion.frames_tracked) == (12, 0)  # detect_every=1: every frame detected
    assert completion.output.endswith("/clips/cam 1.avi.mp4")  # the source name kept, written as .mp4
    assert completion.result.counts == {"face": 12}  # the stub's one box, in every frame
    output = tmp_path / "out.mp4"
    output.write_bytes(await read(store, completion.output.removeprefix(f"s3://{bucket}/")))
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12

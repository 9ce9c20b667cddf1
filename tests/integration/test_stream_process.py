"""`anonymizer run` as a real process: killed with SIGKILL and restarted (no loss), stopped with SIGTERM (drains and
commits), and the embedded default (no Kafka: a local inbox in, JSON lines out)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from obstore.store import S3Store

from processor.settings import Settings, StorageSettings
from schemas.events import CompletionEvent, DeadLetter
from tests.frames import ASTRONAUT_FACE
from tests.inference_stubs import InferenceStub
from tests.integration.kafka_helpers import Broker, consume_all, new_group_id, produce
from tests.integration.stream_support import (
    STUB_MODEL,
    ProcessorProcess,
    committed_offsets,
    enable_versioning,
    ends,
    frame_event,
    list_keys,
    new_topics,
    object_versions,
    processor_settings,
    region_change,
    stop_all,
    stub_model,
    tiny_frames,
    upload,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)

Spawn = Callable[..., ProcessorProcess]
PREDICT = f"/models/{STUB_MODEL}/predict"  # the stub's detection endpoint: its request count shows progress


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """``spawn(settings, name)``: an unstarted processor process; any still running is killed at teardown."""
    made: list[ProcessorProcess] = []

    def make(settings: Settings, name: str, *argv: str) -> ProcessorProcess:
        made.append(ProcessorProcess(settings, tmp_path, name, argv))
        return made[-1]

    yield make
    await stop_all(made)


async def test_no_event_is_lost_when_the_processor_is_killed_and_restarted(
    tansu: Broker,
    storage_settings: StorageSettings,
    s3_endpoint: str,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
    spawn: Spawn,
) -> None:
    bucket = s3_bucket()
    enable_versioning(s3_endpoint, bucket)  # every write of an output key stays visible as a version
    store = s3_store(bucket)
    topics = await new_topics(tansu, 3)
    group_id = new_group_id()
    count, kills = 1000, 4
    frames = tiny_frames()
    await upload(store, {f"frames/{i}.jpg": frames[i % len(frames)] for i in range(count)})
    metadata = await produce(
        tansu, topics.input, [frame_event(f"e-{i}", f"s3://{bucket}/frames/{i}.jpg") for i in range(count)]
    )
    position = {f"e-{i}": (item.partition, item.offset) for i, item in enumerate(metadata)}
    rng = random.Random(11)

    async with InferenceStub([stub_model()]) as stub:
        settings = processor_settings(
            tansu,
            storage_settings,
            tmp_path,
            topics=topics,
            group_id=group_id,
            inference_urls=[stub.url],
            max_in_flight=16,
        )
        committed_at_kill: list[dict[int, int]] = []
        for round_number in range(kills):
            process = await spawn(settings, f"round-{round_number}").start()
            calls = stub.requests[PREDICT]
            target = calls + rng.randint(40, 200)  # a random moment: after this many more frames were sent off
            await wait_until(lambda: stub.requests[PREDICT] >= target, 60, "progress before the kill")  # noqa: B023
            process.signal(signal.SIGKILL)
            assert await process.wait(10) == -signal.SIGKILL
            committed_at_kill.append(await committed_offsets(tansu, topics.input, group_id, 3))
        final = await spawn(settings, "final").start()
        await wait_until(
            lambda: _committed_all(tansu, topics.input, group_id, ends(metadata, 3)),
            120,
            "every offset committed",
            interval_s=0.5,
        )
        final.signal(signal.SIGTERM)
        assert await final.wait(30) == 0, final.log()[-3000:]

    records = await consume_all(tansu, topics.completions, count, timeout_s=30)
    completions = [CompletionEvent.model_validate_json(r.value or b"") for r in records]
    letters = await consume_all(tansu, topics.dead_letters, 1, timeout_s=3)
    done = Counter(c.id for c in completions)
    assert set(done) == set(position), "every event has its completion"
    assert letters == []
    # An event ran twice only if its offset was not committed when a processor was killed.
    for event_id, times in done.items():
        if times > 1:
            partition, offset = position[event_id]
            assert any(offset >= committed[partition] for committed in committed_at_kill), event_id
    duplicates = sum(done.values()) - count
    assert duplicates <= kills * (settings.stream.max_in_flight + 100)  # in flight + done since the last commit
    outputs = await list_keys(store, "anonymized")
    assert len(outputs) == count
    versions = object_versions(s3_endpoint, bucket, "anonymized/")
    assert set(versions) == set(outputs)
    assert all(len(set(etags)) == 1 for etags in versions.values()), "a rewrite must write the same bytes"
    assert sum(len(etags) for etags in versions.values()) >= sum(done.values())


async def _get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()


async def _committed_all(broker: Broker, topic: str, group_id: str, expected: dict[int, int]) -> bool:
    return await committed_offsets(broker, topic, group_id, len(expected)) == expected


async def test_a_surplus_group_member_without_partitions_is_ready(
    tansu: Broker, storage_settings: StorageSettings, tmp_path: Path, spawn: Spawn
) -> None:
    """More processors than partitions (a scaled-out group, or a rolling update's surge): the member the group has
    no partition for is still ready, so a rollout does not wait for it; it reports zero partitions."""
    topics = await new_topics(tansu, 1)
    group_id = new_group_id()
    settings = processor_settings(tansu, storage_settings, tmp_path, topics=topics, group_id=group_id)
    processes = [await spawn(settings, f"member-{i}").start() for i in range(2)]

    async def readiness() -> list[tuple[int, bytes]]:
        addresses = [p.health_url() for p in processes]
        if not all(addresses):
            return []
        return list(await asyncio.gather(*(_get(f"{address}ready") for address in addresses)))

    async def both_ready() -> bool:
        answers = await readiness()
        return len(answers) == 2 and all(status == 200 for status, _ in answers)

    await wait_until(both_ready, 60, "both members ready")
    partitions = sorted(orjson.loads(body)["data"]["stream"]["assigned_partitions"] for _, body in await readiness())
    assert partitions == [0, 1]


async def test_sigterm_drains_commits_everything_done_and_exits_in_time(
    broker: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
    spawn: Spawn,
) -> None:
    bucket = s3_bucket()
    store = s3_store(bucket)
    topics = await new_topics(broker, 2)
    group_id = new_group_id()
    count = 300
    frames = tiny_frames()
    await upload(store, {f"frames/{i}.jpg": frames[i % len(frames)] for i in range(count)})
    metadata = await produce(
        broker, topics.input, [frame_event(f"e-{i}", f"s3://{bucket}/frames/{i}.jpg") for i in range(count)]
    )
    position = {f"e-{i}": (item.partition, item.offset) for i, item in enumerate(metadata)}

    async with InferenceStub([stub_model()], latency_s=0.3) as stub:
        settings = processor_settings(
            broker,
            storage_settings,
            tmp_path,
            topics=topics,
            group_id=group_id,
            inference_urls=[stub.url],
            max_in_flight=16,
            shutdown_timeout_s=5.0,
        )
        process = await spawn(settings, "sigterm").start()
        await wait_until(lambda: stub.requests[PREDICT] >= 40, 60, "processing under way")
        assert stub.in_flight.now > 0, "frames are in flight when the signal comes"
        address = process.health_url()
        assert address is not None
        ready, exposition = await asyncio.gather(_get(address + "ready"), _get(address + "metrics"))
        assert ready[0] == 200 and b'"assigned_partitions":2' in ready[1].replace(b" ", b"")
        assert exposition[0] == 200 and b"anonymizer_events_completed_total" in exposition[1]
        signalled = time.monotonic()
        process.signal(signal.SIGTERM)
        code = await process.wait(30)
        took = time.monotonic() - signalled

    assert code == 0, process.log()[-3000:]
    assert took < settings.stream.shutdown_timeout_s + 5, f"exit took {took:.1f} s"
    committed = await committed_offsets(broker, topics.input, group_id, 2)
    assert sum(committed.values()) < count, "stopped mid-run"
    completions = [
        CompletionEvent.model_validate_json(r.value or b"")
        for r in await consume_all(broker, topics.completions, count, timeout_s=5)
    ]
    done_offsets: dict[int, set[int]] = {0: set(), 1: set()}
    for completion in completions:
        partition, offset = position[completion.id]
        done_offsets[partition].add(offset)
    # Everything in flight was drained and committed: what is done is exactly what lies below the commit.
    assert done_offsets == {partition: set(range(committed[partition])) for partition in (0, 1)}
    assert "draining" in process.log()


def run_embedded(
    workdir: Path, inbox: Path, completions_file: Path, file_root: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``anonymizer run`` with no Kafka configured (the environment cleared of ANONYMIZER_* variables but
    ``file_root``'s)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
    if file_root is not None:
        env["ANONYMIZER_STORAGE__FILE_ROOT"] = str(file_root)
    argv = [sys.executable, "-m", "processor", "run", "--inbox", str(inbox), "--completions", str(completions_file)]
    return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, timeout=120, check=False)


def test_embedded_default_reads_a_folder_inbox_and_writes_outputs_and_completion_lines(
    tmp_path: Path, astronaut_jpeg: bytes, grace_hopper_jpeg: bytes
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "cam 2").mkdir(parents=True)
    (inbox / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (inbox / "cam 2" / "grace hopper.jpg").write_bytes(grace_hopper_jpeg)
    (inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (inbox / "README.txt").write_text("not a frame")
    completions_file = tmp_path / "out" / "completions.jsonl"

    finished = run_embedded(tmp_path, inbox, completions_file)  # built-in detectors, default configuration

    assert finished.returncode == 1, finished.stderr.decode()[-3000:]  # broken.jpg did not complete
    lines = [CompletionEvent.model_validate_json(line) for line in completions_file.read_bytes().splitlines()]
    assert sorted(c.id for c in lines) == ["astronaut.jpg", "cam 2/grace hopper.jpg"]
    dead_letters = (tmp_path / "out" / "completions.dead-letter.jsonl").read_bytes().splitlines()
    (letter,) = [DeadLetter.model_validate_json(line) for line in dead_letters]
    assert (letter.event_id, letter.error_kind) == ("broken.jpg", "image_undecodable")
    by_id = {c.id: c for c in lines}
    astronaut_out = Path(by_id["astronaut.jpg"].output.removeprefix("file://"))
    assert astronaut_out.is_relative_to(inbox) and astronaut_out.is_file()
    assert by_id["astronaut.jpg"].result.counts.get("face") == 1
    assert region_change(astronaut_jpeg, astronaut_out.read_bytes(), ASTRONAUT_FACE) > 12
    assert Path(by_id["cam 2/grace hopper.jpg"].output.removeprefix("file://")).is_file()

    # A second run takes the same frames again (not its own outputs) and rewrites the same files.
    before = astronaut_out.read_bytes()
    assert run_embedded(tmp_path, inbox, completions_file).returncode == 1
    assert len(completions_file.read_bytes().splitlines()) == 4
    assert astronaut_out.read_bytes() == before


def test_embedded_default_reads_a_jsonl_inbox_of_events(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    frame = tmp_path / "frames" / "a.jpg"
    frame.parent.mkdir()
    frame.write_bytes(astronaut_jpeg)
    inbox = tmp_path / "events.jsonl"
    events = [
        orjson.dumps({"id": "one", "source": f"file://{frame}", "attributes": {"camera": "c1"}}),
        orjson.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        b"{broken",
    ]
    inbox.write_bytes(b"\n".join(events))
    completions_file = tmp_path / "completions.jsonl"

    finished = run_embedded(tmp_path, inbox, completions_file, file_root=frame.parent)

    assert finished.returncode == 1, finished.stderr.decode()[-3000:]  # the broken line was dead-lettered
    (completion,) = [CompletionEvent.model_validate_json(line) for line in completions_file.read_bytes().splitlines()]
    assert (completion.id, completion.attributes) == ("one", {"camera": "c1"})
    assert Path(completion.output.removeprefix("file://")).is_file()
    dead_letters = (tmp_path / "completions.dead-letter.jsonl").read_bytes().splitlines()
    (letter,) = [DeadLetter.model_validate_json(line) for line in dead_letters]
    assert letter.error_kind == "invalid_event" and letter.payload() == b"{broken"


def test_the_embedded_inbox_exits_0_only_when_every_event_completed(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jpg").write_bytes(astronaut_jpeg)

    finished = run_embedded(tmp_path, inbox, tmp_path / "completions.jsonl")

    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    assert len((tmp_path / "completions.jsonl").read_bytes().splitlines()) == 1

"""`enqueue` from a folder or memory:// to a JSON-lines file the embedded `run` reads as its inbox."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from processor.errors import InvalidConfiguration, InvalidEvent, SchemeNotAllowed
from processor.settings import Settings, StorageSettings
from processor.storage import ObjectStorage
from processor.stream.enqueue import enqueue
from processor.stream.inbox import inbox_messages
from processor.stream.messages import parse_message
from schemas.config import UserConfiguration


def make_frames(root: Path) -> list[str]:
    files = ["a.jpg", "cam 7/b.PNG", "cam 7/c.jpeg"]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"frame " + name.encode())
    (root / "notes.txt").write_text("not a frame")
    (root / ".cache").mkdir()
    (root / ".cache" / "d.jpg").write_bytes(b"hidden")
    storage = ObjectStorage(StorageSettings(file_root=root), Settings().limits)
    output = storage.output_url(f"file://{root}/a.jpg", "0123456789abcdef")
    Path(output.removeprefix("file://")).parent.mkdir(parents=True)
    Path(output.removeprefix("file://")).write_bytes(b"an earlier output")
    return [f"file://{root}/{name}" for name in files]


async def test_folder_to_jsonl_is_the_same_file_when_run_twice(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    expected = make_frames(frames)
    jsonl = tmp_path / "events.jsonl"

    settings = Settings(storage=StorageSettings(file_root=frames))
    summary = await enqueue(f"file://{frames}", settings, jsonl=jsonl, progress=False)
    first = jsonl.read_bytes()
    await enqueue(f"file://{frames}", settings, jsonl=jsonl, progress=False)

    assert (summary.events, summary.skipped) == (3, 3)
    assert summary.target == str(jsonl)
    assert jsonl.read_bytes() == first
    assert sorted(os.listdir(tmp_path)) == ["events.jsonl", "frames"]
    events = [event for _, value in inbox_messages(jsonl) for event in parse_message(value, [])]
    assert sorted(event.source for event in events) == sorted(expected)
    assert all(event.id == event.source and event.configuration is None for event in events)


async def test_memory_prefix_with_a_named_configuration_and_all_suffixes(tmp_path: Path) -> None:
    bucket = f"memory://enqueue-{uuid.uuid4().hex}"
    async with ObjectStorage(StorageSettings(), Settings().limits) as storage:
        for name in ["x/1.bin", "x/2.jpg", "y/3.jpg"]:
            await storage.put(f"{bucket}/{name}", b"12345", content_type="image/jpeg", metadata={})
    jsonl = tmp_path / "out" / "events.jsonl"

    summary = await enqueue(
        f"{bucket}/x", Settings(), jsonl=jsonl, configuration="plates", suffixes=None, progress=False
    )

    assert (summary.events, summary.bytes) == (2, 10)
    events = [event for _, value in inbox_messages(jsonl) for event in parse_message(value, [])]
    assert sorted(event.source for event in events) == [f"{bucket}/x/1.bin", f"{bucket}/x/2.jpg"]
    assert {event.configuration for event in events} == {"plates"}
    assert not any(isinstance(event.configuration, UserConfiguration) for event in events)


async def test_rate_limit_spaces_events(tmp_path: Path) -> None:
    bucket = f"memory://rate-{uuid.uuid4().hex}"
    async with ObjectStorage(StorageSettings(), Settings().limits) as storage:
        for index in range(11):
            await storage.put(f"{bucket}/{index}.jpg", b"x", content_type="image/jpeg", metadata={})
    started = time.monotonic()
    summary = await enqueue(f"{bucket}/", Settings(), jsonl=tmp_path / "e.jsonl", rate_per_s=20, progress=False)
    elapsed = time.monotonic() - started
    assert summary.events == 11
    assert 0.5 <= elapsed < 2.0, f"11 events at 20/s should take about 0.5 s, took {elapsed:.2f} s"


async def test_a_folder_without_a_file_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemeNotAllowed, match="file_root"):
        await enqueue(f"file://{tmp_path}", Settings(), jsonl=tmp_path / "e.jsonl", progress=False)
    assert not (tmp_path / "e.jsonl").exists()


async def test_a_prefix_outside_the_file_root_is_refused(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(file_root=tmp_path / "root"))
    with pytest.raises(InvalidEvent):
        await enqueue(f"file://{tmp_path}/elsewhere", settings, jsonl=tmp_path / "e.jsonl", progress=False)
    assert not (tmp_path / "e.jsonl").exists()


async def test_a_configuration_name_that_is_a_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfiguration, match=r"configuration name '\.\./secrets'"):
        await enqueue("memory://bucket/", Settings(), jsonl=tmp_path / "e.jsonl", configuration="../secrets")

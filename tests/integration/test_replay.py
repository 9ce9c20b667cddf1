"""`replay` re-publishes dead letters, written by the real sinks (the embedded sink's file, a real broker's topic),
as their original events: filtered by kind and time, each once, unparsable letters counted, a dead broker exit 1."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from processor import __version__
from processor.settings import Settings, StreamSettings
from processor.stream.messages import parse_message
from processor.stream.replay import ReplaySummary, Selection, record_path, replay_file, replay_topic
from processor.stream.sinks.jsonl import JsonlSink
from processor.stream.sinks.kafka import KafkaSink
from schemas.events import CompletionEvent, DeadLetter, FrameEvent
from tests.cli import run_anonymizer
from tests.integration.kafka_helpers import Broker, Message, consume_all, create_topic, new_group_id, produce
from tests.integration.servers import free_port

EARLY = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LATE = EARLY + timedelta(days=2)
MISSING, BROKEN = "object_not_found", "storage_unavailable"


def letter(name: str, kind: str, failed_at: datetime) -> DeadLetter:
    """The dead letter the worker writes for the FrameEvent of ``name`` (its original message byte for byte)."""
    event = FrameEvent(id=f"cam7/{name}", source=f"s3://frames/cam7/{name}", attributes={"camera": 7})
    return DeadLetter(
        event_id=event.id,
        error_kind=kind,
        error_message="…",
        attempts=1,
        source_topic="frames",
        source_partition=0,
        source_offset=0,
        payload_base64=DeadLetter.encode_payload(event.model_dump_json(exclude_none=True).encode()),
        failed_at=failed_at,
        processor_version=__version__,
    )


LETTERS = [
    letter("a.jpg", MISSING, EARLY),
    letter("b.jpg", BROKEN, EARLY),
    letter("c.jpg", MISSING, LATE),
    letter("d.jpg", BROKEN, LATE),
]


def unparsable_original() -> DeadLetter:
    """A letter for a message that never held an event (not JSON): nothing to replay."""
    return LETTERS[0].model_copy(
        update={"event_id": None, "error_kind": "invalid_event", "payload_base64": base64.b64encode(b"{").decode()}
    )


def events_of(path: Path) -> list[FrameEvent]:
    return [FrameEvent.model_validate_json(line) for line in path.read_bytes().splitlines()]


async def dead_letter_file(folder: Path, letters: list[DeadLetter], garbage: bytes = b"") -> Path:
    """The embedded sink's dead-letter file holding ``letters`` (and a ``garbage`` line after them)."""
    sink = JsonlSink(folder / "completions.jsonl")
    async with sink:
        for item in letters:
            await sink.dead_letter(item, None)
    with sink.dead_letter_file.open("ab") as handle:
        handle.write(garbage + b"\n")
    return sink.dead_letter_file


async def test_the_file_replays_the_kind_asked_once_and_counts_what_it_skipped(tmp_path: Path) -> None:
    path = await dead_letter_file(tmp_path, [*LETTERS, unparsable_original()], garbage=b"not a dead letter")
    settings = Settings(stream=StreamSettings(completions_file=tmp_path / "completions.jsonl"))
    out = tmp_path / "replay.jsonl"

    dry = await replay_file(path, settings, Selection(frozenset({MISSING})), jsonl=out, dry_run=True, progress=False)
    assert (dry.read, dry.selected, dry.replayed) == (6, 2, 0)
    assert not out.exists() and not record_path(path).exists(), "a dry run publishes and records nothing"

    first = await replay_file(path, settings, Selection(frozenset({MISSING})), jsonl=out, progress=False)
    assert (first.read, first.selected, first.replayed) == (6, 2, 2)
    assert dict(first.skipped) == {"kind": 3, "unparsable": 1}
    assert [event.id for event in events_of(out)] == ["cam7/a.jpg", "cam7/c.jpg"]
    assert events_of(out)[0] == FrameEvent.model_validate_json(LETTERS[0].payload() or b""), "the original event"
    line = orjson.loads(first.line())
    assert line["skipped"]["already_replayed"] == 0 and line["kinds"][MISSING] == {"read": 2, "replayed": 2}

    again = await replay_file(path, settings, Selection(frozenset({MISSING})), jsonl=out, progress=False)
    assert (again.replayed, again.skipped["already_replayed"]) == (0, 2)
    assert events_of(out) == []

    late = await replay_file(path, settings, Selection(since=EARLY + timedelta(days=1)), jsonl=out, progress=False)
    assert [event.id for event in events_of(out)] == ["cam7/d.jpg"]
    assert late.skipped["before_since"] == 2, "b.jpg and the invalid one: older than --since, kept for later"
    assert late.skipped["already_replayed"] == 2

    rest = await replay_file(path, settings, Selection(), jsonl=out, progress=False)
    assert [event.id for event in events_of(out)] == ["cam7/b.jpg"]
    assert (rest.skipped["not_replayable"], rest.skipped["unparsable"]) == (1, 1)


async def test_the_topic_replays_each_kind_once_up_to_its_end_at_the_start(broker: Broker) -> None:
    dead_letters, inputs = await create_topic(broker, 2), await create_topic(broker)
    settings = Settings(
        kafka=broker.kafka_settings(dead_letter_topic=dead_letters, input_topic=inputs, replay_group_id=new_group_id())
    )
    async with KafkaSink(settings.kafka) as sink:
        for item in LETTERS:
            await sink.dead_letter(item, item.event_id.encode() if item.event_id else None)
    await produce(broker, dead_letters, [Message(b"\xff garbage", partition=1)])

    async def replay(selection: Selection, **options: object) -> ReplaySummary:
        return await replay_topic(settings, selection, progress=False, **options)  # type: ignore[arg-type]

    dry = await replay(Selection(frozenset({MISSING})), dry_run=True)
    assert (dry.read, dry.selected, dry.replayed) == (5, 2, 0)
    first = await replay(Selection(frozenset({MISSING})))
    assert (first.read, first.replayed, first.skipped["kind"], first.skipped["unparsable"]) == (5, 2, 2, 1)
    records = await consume_all(broker, inputs, 2, timeout_s=10)
    events = [event for record in records for event in parse_message(record.value, list(record.headers))]
    assert sorted(event.id for event in events) == ["cam7/a.jpg", "cam7/c.jpg"]
    assert {record.key for record in records} == {b"s3://frames/cam7/a.jpg", b"s3://frames/cam7/c.jpg"}

    again = await replay(Selection(frozenset({MISSING})))
    assert (again.replayed, again.skipped["already_replayed"]) == (0, 2)
    held = await replay(Selection(frozenset({BROKEN}), until=EARLY + timedelta(days=1)))
    assert (held.replayed, held.skipped["after_until"]) == (1, 1), "b.jpg now, d.jpg (later than --until) held"
    rest = await replay(Selection())
    assert (rest.replayed, rest.skipped["already_replayed"]) == (1, 3), "d.jpg was held, not passed over"
    assert len(await consume_all(broker, inputs, 5, timeout_s=5)) == 4, "each letter published once"
    fresh = await replay(Selection(), group=new_group_id(), dry_run=True)
    assert fresh.selected == 4, "another group has its own record"


async def test_a_file_replays_to_the_kafka_input_topic(broker: Broker, tmp_path: Path) -> None:
    path = await dead_letter_file(tmp_path, LETTERS)
    inputs = await create_topic(broker)
    settings = Settings(kafka=broker.kafka_settings(input_topic=inputs))

    summary = await replay_file(path, settings, Selection(frozenset({BROKEN})), progress=False)

    assert (summary.replayed, summary.target) == (2, f"Kafka topic {inputs}")
    records = await consume_all(broker, inputs, 2, timeout_s=10)
    assert [FrameEvent.model_validate_json(record.value).id for record in records] == ["cam7/b.jpg", "cam7/d.jpg"]
    assert not (tmp_path / "replay.jsonl").exists()


def anonymizer(*arguments: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"ANONYMIZER_STREAM__COMPLETIONS_FILE": str(cwd / "completions.jsonl"), **env}
    return run_anonymizer("replay", "--no-progress", *arguments, cwd=cwd, env=environment)


async def test_the_command_prints_its_summary_and_exits_by_the_documented_codes(tmp_path: Path) -> None:
    path = await dead_letter_file(tmp_path, LETTERS)

    done = anonymizer("--kind", MISSING, "--since", "2026-12-01T08:00:00", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert (summary["source"], summary["replayed"], summary["target"]) == (str(path), 2, "replay.jsonl")
    assert [event.id for event in events_of(tmp_path / "replay.jsonl")] == ["cam7/a.jpg", "cam7/c.jpg"]

    unknown = anonymizer("--kind", "object_missing", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown error kind 'object_missing'" in unknown.stderr
    bad_time = anonymizer("--since", "yesterday", cwd=tmp_path)
    assert bad_time.returncode == 2 and "not an ISO-8601 time" in bad_time.stderr
    exists = anonymizer(cwd=tmp_path)
    assert exists.returncode == 2 and "replay.jsonl exists" in exists.stderr

    group = anonymizer("--file", str(path), "--group", "g", cwd=tmp_path)
    assert group.returncode == 2 and "--group names the dead-letter topic" in group.stderr

    recorded = record_path(path).read_text()
    down = anonymizer("--file", str(path), cwd=tmp_path, ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    assert down.returncode == 1 and "broker_unavailable" in down.stderr, down.stderr
    assert record_path(path).read_text() == recorded, "nothing recorded as replayed"
    topic_down = anonymizer(cwd=tmp_path, ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    assert topic_down.returncode == 1 and "broker_unavailable" in topic_down.stderr, topic_down.stderr


def test_a_frame_dead_lettered_for_a_missing_source_completes_once_uploaded_and_replayed(
    tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    frame = tmp_path / "frames" / "a.jpg"
    frame.parent.mkdir()
    inbox = tmp_path / "events.jsonl"
    inbox.write_bytes(orjson.dumps({"id": "cam7-a", "source": f"file://{frame}"}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
    env |= {"ANONYMIZER_STORAGE__FILE_ROOT": str(frame.parent)}

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "processor", *arguments, "--completions", str(tmp_path / "completions.jsonl")]
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert run("run", "--inbox", str(inbox)).returncode == 1, "the source is missing: dead-lettered"
    frame.write_bytes(astronaut_jpeg)
    replayed = subprocess.run(
        [sys.executable, "-m", "processor", "replay", "--no-progress", "--kind", "object_not_found"],
        cwd=tmp_path,
        env=env | {"ANONYMIZER_STREAM__COMPLETIONS_FILE": str(tmp_path / "completions.jsonl")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert orjson.loads(replayed.stdout)["replayed"] == 1
    finished = run("run", "--inbox", str(tmp_path / "replay.jsonl"))

    assert finished.returncode == 0, finished.stderr[-3000:]
    (completion,) = [
        CompletionEvent.model_validate_json(line) for line in (tmp_path / "completions.jsonl").read_bytes().splitlines()
    ]
    assert completion.id == "cam7-a" and completion.result.counts.get("face") == 1
    assert Path(completion.output.removeprefix("file://")).is_file()

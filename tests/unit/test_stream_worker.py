"""One event's processing: output written and completion published, retries of transient errors, dead letters
for the rest, nothing ever raised; against in-memory object storage, a recording sink and scripted localizers."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections import deque
from collections.abc import Callable, Sequence

import pytest

from processor.errors import INTERNAL, BrokerUnavailable, InferenceUnavailable, InvalidEvent, UnknownLabel
from processor.frames import Box, Frame, Localization
from processor.settings import Settings, StreamSettings
from processor.storage import ObjectStorage
from processor.stream.configurations import Configurations
from processor.stream.sources.base import Record
from processor.stream.worker import StreamStats, Worker
from schemas.config import InferenceType, SensitiveInfo, UserConfiguration
from schemas.events import CompletionEvent, DeadLetter, FrameEvent


class RecordingSink:
    """Keeps what was published; ``fail_next`` publishes fail with a transient error first."""

    def __init__(self, fail_next: int = 0) -> None:
        self.completions: list[CompletionEvent] = []
        self.dead_letters: list[tuple[DeadLetter, bytes | None]] = []
        self.fail_next = fail_next

    async def completed(self, event: CompletionEvent) -> None:
        self._maybe_fail()
        self.completions.append(event)

    async def dead_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        self._maybe_fail()
        self.dead_letters.append((letter, key))

    async def flush(self) -> None:
        return None

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerUnavailable("broker away")


class ScriptedLocalizer:
    """Finds one box in the middle of the frame; raises the scripted errors first, one per call."""

    def __init__(self, *errors: Exception, delay_s: float = 0.0) -> None:
        self.errors = deque(errors)
        self.calls = 0
        self.delay_s = delay_s

    def needs_encoded_frames(self, entries: Sequence[SensitiveInfo]) -> bool:
        return False

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.errors:
            raise self.errors.popleft()
        box = Box(frame.width / 4, frame.height / 4, frame.width * 3 / 4, frame.height * 3 / 4, entry.class_name)
        return Localization(label=entry.class_name, boxes=(box,), source="scripted")


FACES_ONLY = UserConfiguration(
    sensitive_info=[
        SensitiveInfo(
            model_name="centerface",
            class_name="face",
            anonymization_technique="blurring",
            inference_type=InferenceType.detection,
            anonymization_degree=1.0,
        )
    ]
)


def faces_only(event_id: str, source: str) -> FrameEvent:
    """An event whose configuration has one entry: one localize call per try."""
    return FrameEvent(id=event_id, source=source, configuration=FACES_ONLY)


def settings(**stream: object) -> Settings:
    options: dict[str, object] = {
        "retry_backoff_s": 0.001,
        "retry_backoff_max_s": 0.01,
        "max_attempts": 3,
        "retry_budget_s": 0.0,
    }
    options.update(stream)
    return Settings(stream=StreamSettings.model_validate(options))


RECORD_HEADERS = (("ce_id", b"\x00\xff"),)


def record(value: bytes = b'{"original": true}') -> Record:
    return Record("frames", 2, 41, b"the-key", value, RECORD_HEADERS)


@pytest.fixture
async def storage() -> ObjectStorage:
    configured = settings()
    async with ObjectStorage(configured.storage, configured.limits) as opened:
        return opened


@pytest.fixture
async def source_url(storage: ObjectStorage, astronaut_jpeg: bytes) -> str:
    url = f"memory://bucket-{uuid.uuid4().hex}/camera 7/frame.jpg"
    await storage.put(url, astronaut_jpeg, content_type="image/jpeg", metadata={})
    return url


Build = Callable[..., tuple[Worker, RecordingSink, StreamStats]]


@pytest.fixture
def build(storage: ObjectStorage) -> Build:
    def make(
        localizer: ScriptedLocalizer,
        *,
        sink: RecordingSink | None = None,
        stop: asyncio.Event | None = None,
        **stream: object,
    ) -> tuple[Worker, RecordingSink, StreamStats]:
        configured = settings(**stream)
        sink = sink or RecordingSink()
        stats = StreamStats()
        worker = Worker(
            settings=configured,
            storage=storage,
            localizer=localizer,
            sink=sink,
            configurations=Configurations(configured.stream),
            stats=stats,
            stop=stop or asyncio.Event(),
            rng=random.Random(1),
        )
        return worker, sink, stats

    return make


async def test_writes_the_output_then_publishes_the_completion(
    build: Build, storage: ObjectStorage, source_url: str, astronaut_jpeg: bytes
) -> None:
    worker, sink, stats = build(ScriptedLocalizer())
    event = FrameEvent(id="e1", source=source_url, attributes={"camera": 7})

    assert await worker.process(event, record()) is True

    (completion,) = sink.completions
    assert completion.id == "e1"
    assert completion.attempts == 1
    assert completion.attributes == {"camera": 7}
    assert completion.output == storage.output_url(source_url, completion.configuration_hash)
    assert completion.result.counts == {"face": 1, "license_plate": 1}
    assert {"fetch", "decode", "localize", "encode", "put"} <= set(completion.result.timings_ms)
    written = await storage.get(completion.output)
    assert written[:2] == b"\xff\xd8" and written != astronaut_jpeg
    assert stats.completed == 1 and stats.dead_lettered == 0 and stats.in_flight == 0


async def test_a_replay_rewrites_the_same_key_with_the_same_bytes(
    build: Build, storage: ObjectStorage, source_url: str
) -> None:
    worker, sink, _ = build(ScriptedLocalizer())
    event = FrameEvent(id="e1", source=source_url)
    await worker.process(event, record())
    first = await storage.get(sink.completions[0].output)
    await worker.process(event, record())
    assert sink.completions[0].output == sink.completions[1].output
    assert await storage.get(sink.completions[1].output) == first


async def test_transient_errors_are_retried_until_success(build: Build, source_url: str) -> None:
    localizer = ScriptedLocalizer(InferenceUnavailable("503"), InferenceUnavailable("timeout"))
    worker, sink, stats = build(localizer)

    assert await worker.process(faces_only("e1", source_url), record()) is True

    assert [c.attempts for c in sink.completions] == [3]
    assert stats.retries == 2
    assert sink.dead_letters == []


async def test_transient_errors_past_max_attempts_are_dead_lettered_with_the_attempts(
    build: Build, source_url: str
) -> None:
    localizer = ScriptedLocalizer(*[InferenceUnavailable("503 from http://stub/") for _ in range(5)])
    worker, sink, _ = build(localizer, max_attempts=3)

    assert await worker.process(faces_only("e1", source_url), record()) is True

    ((letter, key),) = sink.dead_letters
    assert (letter.error_kind, letter.attempts, letter.event_id) == ("inference_unavailable", 3, "e1")
    assert "503 from http://stub/" in letter.error_message
    assert localizer.calls == 3
    assert sink.completions == []
    assert key == b"the-key"


async def test_permanent_errors_are_dead_lettered_at_once_with_the_original_message(build: Build) -> None:
    worker, sink, stats = build(ScriptedLocalizer())
    original = b'{"id": "e1", "source": "memory://nowhere/missing.jpg"}'

    done = await worker.process(FrameEvent(id="e1", source="memory://nowhere/missing.jpg"), record(original))

    assert done is True
    ((letter, _),) = sink.dead_letters
    assert (letter.error_kind, letter.attempts) == ("object_not_found", 1)
    assert letter.payload() == original
    assert letter.original_headers() == list(RECORD_HEADERS)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("frames", 2, 41)
    assert stats.dead_lettered == 1


async def test_an_unknown_label_is_permanent(build: Build, source_url: str) -> None:
    localizer = ScriptedLocalizer(UnknownLabel("model 'centerface' has no label 'unicorn'"))
    worker, sink, _ = build(localizer)
    await worker.process(faces_only("e1", source_url), record())
    assert [(letter.error_kind, letter.attempts) for letter, _ in sink.dead_letters] == [("unknown_label", 1)]
    assert localizer.calls == 1


async def test_a_bug_is_dead_lettered_as_internal_and_does_not_raise(build: Build, source_url: str) -> None:
    worker, sink, _ = build(ScriptedLocalizer(ZeroDivisionError("division by zero")))
    assert await worker.process(FrameEvent(id="e1", source=source_url), record()) is True
    ((letter, _),) = sink.dead_letters
    assert letter.error_kind == INTERNAL
    assert letter.error_message == "ZeroDivisionError: division by zero"


async def test_a_message_without_a_valid_event_is_rejected_with_its_bytes(build: Build) -> None:
    worker, sink, _ = build(ScriptedLocalizer())
    assert await worker.reject(record(b"not json"), InvalidEvent("message is not JSON")) is True
    ((letter, _),) = sink.dead_letters
    assert letter.event_id is None
    assert letter.error_kind == "invalid_event"
    assert base64.b64decode(letter.payload_base64 or "") == b"not json"


async def test_a_failed_publish_is_retried_without_redoing_the_frame(build: Build, source_url: str) -> None:
    localizer = ScriptedLocalizer()
    worker, sink, _ = build(localizer, sink=RecordingSink(fail_next=2))
    assert await worker.process(faces_only("e1", source_url), record()) is True
    assert len(sink.completions) == 1
    assert localizer.calls == 1


async def test_shutdown_during_a_backoff_abandons_the_event_undone(build: Build, source_url: str) -> None:
    stop = asyncio.Event()
    worker, sink, stats = build(
        ScriptedLocalizer(InferenceUnavailable("down"), InferenceUnavailable("down")),
        stop=stop,
        retry_backoff_s=30.0,
        retry_backoff_max_s=30.0,
    )
    task = asyncio.create_task(worker.process(FrameEvent(id="e1", source=source_url), record()))
    await asyncio.sleep(0.2)
    stop.set()
    assert await asyncio.wait_for(task, 2.0) is False
    assert sink.completions == [] and sink.dead_letters == []
    assert stats.abandoned == 1


async def test_frames_in_flight_never_exceed_the_bound(build: Build, source_url: str) -> None:
    worker, sink, stats = build(ScriptedLocalizer(delay_s=0.02), max_in_flight=3)
    events = [FrameEvent(id=f"e{i}", source=source_url) for i in range(12)]
    results = await asyncio.gather(*(worker.process(event, record()) for event in events))
    assert all(results)
    assert len(sink.completions) == 12
    assert stats.peak_in_flight == 3


async def test_a_parser_bug_is_dead_lettered_as_internal(build: Build) -> None:
    worker, sink, _ = build(ScriptedLocalizer())
    assert await worker.reject(record(b"{}"), KeyError("Records")) is True
    ((letter, _),) = sink.dead_letters
    assert (letter.error_kind, letter.error_message) == (INTERNAL, "KeyError: 'Records'")


async def test_a_notification_of_our_own_output_is_skipped_not_anonymized_again(
    build: Build, storage: ObjectStorage, source_url: str
) -> None:
    localizer = ScriptedLocalizer()
    worker, sink, stats = build(localizer)
    await worker.process(FrameEvent(id="e1", source=source_url), record())
    output = sink.completions[0].output

    assert await worker.process(FrameEvent(id="e2", source=output), record()) is True  # done: its offset may move

    assert len(sink.completions) == 1 and not sink.dead_letters
    assert stats.skipped == 1
    assert localizer.calls == 2  # the first event's two entries only


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("s3://frames/cam//1.jpg", "invalid_event"),
        ("s3://frames/cam/./1.jpg", "invalid_event"),
        ("s3://frames/cam/../1.jpg", "invalid_event"),
        ("s3://Frames_/1.jpg", "bucket_name_invalid"),
        ("file:///etc/passwd", "scheme_not_allowed"),
    ],
)
async def test_a_source_refused_by_the_storage_is_dead_lettered_not_left_undone(
    build: Build, source: str, kind: str
) -> None:
    """The own-output check parses the source too: a key the storage refuses must end in a dead letter, or the
    partition's commit point stops at that event for good."""
    localizer = ScriptedLocalizer()
    worker, sink, stats = build(localizer)

    assert await worker.process(FrameEvent(id="e1", source=source), record()) is True

    ((letter, _),) = sink.dead_letters
    assert (letter.error_kind, letter.attempts) == (kind, 1)
    assert stats.dead_lettered == 1 and localizer.calls == 0

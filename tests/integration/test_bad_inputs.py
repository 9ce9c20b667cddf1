"""The bad-input corpus (``tests/bad_inputs.py``) through every entry point, in bulk: the API over a socket, one CLI
batch per media kind, one ``anonymizer run --inbox`` and one processor per Kafka-protocol broker. Each try must end in
one of its case's documented outcomes — never a 500, ``internal``, a crash, a hang or a stalled partition — and every
``ok`` image the stub's box covers must come out with that box hidden.

Each test writes its measured run (tried, clean, count per outcome) to ``.pytest_cache/d/bad-inputs/<entry>.json``;
``python -m tests.bad_inputs --table`` prints them as the table in tests/README.md.
"""

from __future__ import annotations

import asyncio
import io
import json
import mimetypes
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import orjson
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from obstore.store import S3Store

from processor.errors import INTERNAL
from processor.settings import StorageSettings
from processor.video.console import VIDEOS
from schemas.events import CompletionEvent, DeadLetter
from tests.bad_inputs import (
    GOOD_IMAGE,
    OK,
    SIDE,
    SKIPPED,
    Case,
    EventCase,
    event_cases,
    good_images,
    image_cases,
    video_cases,
)
from tests.inference_stubs import InferenceStub
from tests.integration.api_support import api_on_loopback
from tests.integration.kafka_helpers import Broker, Message, consume_all, new_group_id, produce
from tests.integration.stream_support import (
    Processor,
    committed_offsets,
    ends,
    new_topics,
    processor_settings,
    read,
    settings_env,
    stub_configuration,
    stub_model,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

# docs/api.md, "Status": the kind of each refusal → its status code.
API_STATUS = {
    "image_undecodable": 400,
    "video_undecodable": 400,
    "container_not_allowed": 400,
    "image_too_large": 413,
    "image_too_complex": 413,
    "video_too_long": 413,
}
Outcomes = dict[str, str]
"""Case name → the outcome one entry point ended it in (``ok`` or an error kind)."""


def hidden(data: bytes) -> bool | None:
    """For a SIDE×SIDE output: is the stub's box (its middle half) black? None for other sizes (not covered)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "an output that does not decode"
    if image.shape[:2] != (SIDE, SIDE):
        return None
    return bool(image[SIDE * 3 // 8 : SIDE * 5 // 8, SIDE * 3 // 8 : SIDE * 5 // 8].max() < 24)


def video_hidden(data: bytes) -> bool | None:
    """For a video whose frames hold the stub's box (24–72 px): is it black in every frame? None when none does."""
    with av.open(io.BytesIO(data)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    assert frames, "an output video without frames"
    covered = [frame[28:68, 28:68] for frame in frames if min(frame.shape[:2]) >= 72]
    return all(region.mean() < 25 for region in covered) if covered else None


def mismatches(expected: Mapping[str, frozenset[str]], found: Mapping[str, Iterable[str]]) -> list[str]:
    """Every case whose outcomes are not all expected, or that has none (a lost event, a hang)."""
    wrong = []
    for name, allowed in expected.items():
        outcomes = list(found.get(name, ()))
        if not outcomes or not set(outcomes) <= allowed or INTERNAL in outcomes:
            wrong.append(f"{name}: expected one of {sorted(allowed)}, got {outcomes or 'nothing'}")
    return wrong


def record(request: pytest.FixtureRequest, entry: str, clean: int, cases: Mapping[str, list[str]]) -> None:
    """Write this entry point's measured run (and each case's outcomes) for ``python -m tests.bad_inputs --table``."""
    folder = request.config.cache.mkdir("bad-inputs") if request.config.cache else None
    if folder is not None:
        counts = Counter(outcome for outcomes in cases.values() for outcome in outcomes)
        run = {"tried": len(cases), "clean": clean, "outcomes": dict(sorted(counts.items())), "cases": cases}
        (folder / f"{entry}.json").write_text(json.dumps(run, indent=1))


def check(
    request: pytest.FixtureRequest, entry: str, cases: Iterable[Case | EventCase], found: Mapping[str, Any]
) -> None:
    expected = {case.name: case.expected_at(entry) for case in cases}
    lists = {name: value if isinstance(value, list) else [value] for name, value in found.items()}
    wrong = mismatches(expected, lists)
    record(request, entry, len(expected) - len(wrong), {name: lists.get(name, ["lost"]) for name in expected})
    assert not wrong, f"{len(wrong)} of {len(expected)} cases of {entry} ended wrong:\n" + "\n".join(wrong)


# --- the API --------------------------------------------------------------------------------------------------------


@pytest.fixture
async def stub() -> AsyncIterator[InferenceStub]:
    async with InferenceStub([stub_model()]) as started:
        yield started


async def post(client: TestClient[Any, Any], path: str, field: str, case: Case) -> tuple[str, bytes]:
    """Upload one case; its outcome (``ok`` or the kind the error body names) and the body."""
    form = FormData()
    content_type = mimetypes.guess_type(case.file_name)[0] or "application/octet-stream"  # wrong for a wrong suffix
    form.add_field(field, io.BytesIO(case.data), filename=case.file_name, content_type=content_type)
    form.add_field("configuration", orjson.dumps(stub_configuration()), filename="user_configuration.json")
    response = await client.post(path, data=form)
    body = await response.read()
    if response.status == 200:
        return OK, body
    kind = str(orjson.loads(body)["data"]["kind"])
    assert API_STATUS.get(kind) == response.status, f"{case.name}: {response.status} for {kind}"
    return kind, body


async def test_the_api_answers_every_image_and_video_case_with_its_documented_status(
    request: pytest.FixtureRequest, tmp_path: Path, stub: InferenceStub
) -> None:
    images, videos = image_cases(), video_cases()
    found: Outcomes = {}
    exposed, covered = [], 0
    async with api_on_loopback(tmp_path, [stub.url]) as client:
        for case in images:
            found[case.name], body = await post(client, "/anonymize/", "image", case)
            covered_ok = hidden(body) if found[case.name] == OK else None
            covered += covered_ok is not None
            if covered_ok is False:
                exposed.append(case.name)
        check(request, "api-image", images, found)
        for case in videos:
            found[case.name], body = await post(client, "/anonymize_video/", "video", case)
            covered_ok = video_hidden(body) if found[case.name] == OK else None
            covered += covered_ok is not None
            if covered_ok is False:
                exposed.append(case.name)
        check(request, "api-video", videos, found)
        health = await client.get("/health")
        assert health.status == 200  # still answering after the whole corpus
    assert not exposed, f"outputs with the stub's box not hidden: {exposed}"
    assert covered > sum(outcome == OK for outcome in found.values()) // 2  # most are SIDE×SIDE: the check covers them


# --- the CLI --------------------------------------------------------------------------------------------------------


async def run_cli(*arguments: str, cwd: Path) -> tuple[int, str, str]:
    """``anonymizer ...`` as a user runs it (the built-in detectors), its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "processor",
        *arguments,
        "--no-progress",
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 360)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def write_cases(folder: Path, cases: Iterable[Case]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in cases:
        paths.append(folder / case.file_name)
        paths[-1].write_bytes(case.data)
    return paths


async def test_one_cli_image_batch_over_the_corpus_reports_each_file_and_exits_1(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cases = image_cases()
    write_cases(tmp_path / "images", cases)

    status, stdout, stderr = await run_cli("image", "images", "--out", "out", cwd=tmp_path)

    assert status == 1, stderr[-3000:]  # some files failed, the others are done (README: exit codes)
    lines = [orjson.loads(line) for line in stdout.splitlines()]
    by_name = {Path(line["source"]).name: line for line in lines}
    assert len(by_name) == len(lines) == len(cases)
    found = {case.name: by_name[case.file_name].get("error_kind", OK) for case in cases if case.file_name in by_name}
    assert all(by_name[case.file_name]["status"] in ("ok", "error") for case in cases)
    for case in cases:
        written = tmp_path / "out" / case.file_name
        assert written.exists() == (found[case.name] == OK), case.name  # a failed file leaves nothing behind
    check(request, "cli-image", cases, found)
    assert f"anonymized {sum(o == OK for o in found.values())} file(s)" in stderr


async def test_one_cli_video_batch_over_the_corpus_reports_each_video_and_exits_1(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cases = video_cases()
    paths = write_cases(tmp_path / "videos", cases)  # named one by one: a playlist's suffix is not a video's

    status, _, stderr = await run_cli("video", *map(str, paths), "--out", "out", cwd=tmp_path)

    assert status == 1, stderr[-3000:]
    failures: dict[str, list[str]] = {}  # file name → kinds of the lines "anonymizer: KIND: <its name or path>: …"
    for line in stderr.splitlines():
        kind, _, rest = line.removeprefix("anonymizer: ").partition(": ")
        named = next((path.name for path in paths if rest.startswith((f"{path.name}", f"{path}: "))), None)
        if line.startswith("anonymizer: ") and named is not None:
            failures.setdefault(named, []).append(kind)
    found: dict[str, list[str]] = {}
    for case in cases:
        output = tmp_path / "out" / VIDEOS.output_name(Path(case.file_name))
        found[case.name] = ([OK] if output.exists() else []) + failures.get(case.file_name, [])
    check(request, "cli-video", cases, found)
    assert f"anonymized {sum(o == [OK] for o in found.values())} of {len(cases)} video(s)" in stderr


# --- the stream: inbox and Kafka -------------------------------------------------------------------------------------


class Corpus:
    """Every case as a stream event: image and video cases as FrameEvents on objects of one bucket, and the event
    cases (which read their own objects, GOOD_IMAGE, and ``file_root``)."""

    def __init__(self, bucket: str, root: Path) -> None:
        self.bucket, self.root = bucket, root
        self.images, self.videos = image_cases(), video_cases()
        self.events = event_cases(bucket, root / "root", root / "outside")
        for folder in ("root", "outside"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / GOOD_IMAGE).write_bytes(good_images()["jpeg"][0])

    def objects(self) -> dict[str, bytes]:
        objects = {f"images/{case.file_name}": case.data for case in self.images}
        objects |= {f"videos/{case.file_name}": case.data for case in self.videos}
        objects[GOOD_IMAGE] = good_images()["jpeg"][0]
        for case in self.events:
            objects |= case.objects
        return objects

    def messages(self, events: Iterable[EventCase]) -> list[tuple[str, Message]]:
        """(case name, message) for every case: media first, then ``events``."""
        s3 = f"s3://{self.bucket}"
        found = [
            (c.name, Message(orjson.dumps({"id": c.name, "source": f"{s3}/images/{c.file_name}"}))) for c in self.images
        ]
        found += [
            (c.name, Message(orjson.dumps({"id": c.name, "source": f"{s3}/videos/{c.file_name}", "kind": "video"})))
            for c in self.videos
        ]
        found += [(c.name, Message(c.value, key=c.name.encode(), headers=list(c.headers))) for c in events]
        return found

    def owner(self, completion: CompletionEvent) -> str:
        """The case a completion belongs to, by its source."""
        key = completion.source.removeprefix(f"s3://{self.bucket}/")
        for case in self.events:
            if key in case.sources or completion.source in case.sources:
                return case.name
        media = key.split("/", 1)[1]
        return next(c.name for c in [*self.images, *self.videos] if c.file_name == media)

    def storage(self, settings: StorageSettings) -> StorageSettings:
        return settings.model_copy(update={"file_root": self.root / "root", "schemes": frozenset({"s3"})})


def outcomes(
    corpus: Corpus,
    names: list[str],
    completions: Iterable[CompletionEvent],
    letters: Iterable[DeadLetter],
    index: Callable[[DeadLetter], int],
) -> dict[str, list[str]]:
    """Case name → every outcome its events ended in: completions by source, dead letters by message position."""
    found: dict[str, list[str]] = {}
    for completion in completions:
        found.setdefault(corpus.owner(completion), []).append(OK)
    for letter in letters:
        found.setdefault(names[index(letter)], []).append(letter.error_kind)
    for case in corpus.events:  # a message that asks for no work ends in neither; its offset is done at once
        if case.events == 0 and case.name in names:
            found.setdefault(case.name, [SKIPPED])
    return found


async def exposed_outputs(store: S3Store, bucket: str, completions: Iterable[CompletionEvent]) -> list[str]:
    """The completed image outputs whose stub box is not hidden; asserts that the check covered most of them."""
    exposed, covered, frames = [], 0, 0
    for completion in completions:
        if completion.kind == "frame" and completion.output.startswith(f"s3://{bucket}/"):
            frames += 1
            covered_ok = hidden(await read(store, completion.output.removeprefix(f"s3://{bucket}/")))
            covered += covered_ok is not None
            if covered_ok is False:
                exposed.append(completion.source)
    assert covered > frames // 2, f"only {covered} of {frames} outputs are {SIDE}×{SIDE}"
    return exposed


def expected_events(corpus: Corpus, events: Iterable[EventCase]) -> int:
    return len(corpus.images) + len(corpus.videos) + sum(case.events for case in events)


async def test_one_inbox_run_over_the_corpus_ends_every_event_in_a_completion_or_its_dead_letter(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    stub: InferenceStub,
) -> None:
    bucket = s3_bucket()
    corpus = Corpus(bucket, tmp_path / "disk")
    await upload(s3_store(bucket), corpus.objects())
    events = [case for case in corpus.events if case.fits_a_jsonl_line]
    pairs = corpus.messages(events)
    workdir = tmp_path / "work"
    settings = processor_settings(None, corpus.storage(storage_settings), workdir, inference_urls=[stub.url])
    inbox = workdir / "events.jsonl"
    inbox.write_bytes(b"\n".join(message.value or b"" for _, message in pairs))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
    env |= settings_env(settings)
    env.pop("ANONYMIZER_KAFKA", None)

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "processor",
        "run",
        "--inbox",
        str(inbox),
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 360)

    assert process.returncode == 1, stderr.decode()[-3000:]  # docs/stream.md: 1 when any event was dead-lettered
    done = [
        CompletionEvent.model_validate_json(line) for line in (workdir / "completions.jsonl").read_bytes().splitlines()
    ]
    dead = [
        DeadLetter.model_validate_json(line)
        for line in (workdir / "completions.dead-letter.jsonl").read_bytes().splitlines()
    ]
    assert len(done) + len(dead) == expected_events(corpus, events)
    found = outcomes(corpus, [name for name, _ in pairs], done, dead, lambda letter: letter.source_offset)
    check(request, "inbox", [*corpus.images, *corpus.videos, *events], found)
    assert not await exposed_outputs(s3_store(bucket), bucket, done)


async def test_one_processor_per_broker_ends_every_corpus_event_and_commits_to_the_end(
    request: pytest.FixtureRequest,
    broker: Broker,
    tmp_path: Path,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    stub: InferenceStub,
) -> None:
    bucket = s3_bucket()
    corpus = Corpus(bucket, tmp_path / "disk")
    await upload(s3_store(bucket), corpus.objects())
    pairs = corpus.messages(corpus.events)
    topics = await new_topics(broker, 3)
    group_id = new_group_id()
    metadata = await produce(broker, topics.input, [message for _, message in pairs])
    position = {(item.partition, item.offset): index for index, item in enumerate(metadata)}
    expected = expected_events(corpus, corpus.events)
    settings = processor_settings(
        broker,
        corpus.storage(storage_settings),
        tmp_path / "work",
        topics=topics,
        group_id=group_id,
        inference_urls=[stub.url],
    )

    processor = Processor(settings)
    try:
        await processor.wait_for(expected, 300)
    finally:
        stats = await processor.close()

    assert stats.completed + stats.dead_lettered == expected
    done = [
        CompletionEvent.model_validate_json(r.value or b"")
        for r in await consume_all(broker, topics.completions, stats.completed)
    ]
    dead = [
        DeadLetter.model_validate_json(r.value or b"")
        for r in await consume_all(broker, topics.dead_letters, stats.dead_lettered)
    ]
    assert (len(done), len(dead)) == (stats.completed, stats.dead_lettered)
    found = outcomes(
        corpus,
        [name for name, _ in pairs],
        done,
        dead,
        lambda letter: position[letter.source_partition, letter.source_offset],
    )
    check(request, f"kafka-{broker.name}", [*corpus.images, *corpus.videos, *corpus.events], found)
    assert await committed_offsets(broker, topics.input, group_id, 3) == ends(metadata, 3)  # no stalled partition
    assert not await exposed_outputs(s3_store(bucket), bucket, done)

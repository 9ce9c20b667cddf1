"""A flaky inference service under a real ``anonymizer run`` on Tansu: of the predict requests, 20 % answer 5xx,
10 % are too slow (the client times out), 5 % are reset mid-request, 3 % answer malformed JSON and 2 % answer
32 MiB (above the answer cap). Every event ends — completed, or dead-lettered with the permanent kind of the
answer it got (``inference_rejected`` / ``inference_answer_too_large``; a transient fault never dead-letters) —
the HTTP tries stay bounded, the processor's memory stays bounded, and a replay of the dead letters once the
service behaves completes the rest: none lost."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from obstore.store import S3Store

from processor.settings import StorageSettings, StreamSettings
from processor.stream.replay import Selection, replay_topic
from schemas.events import DeadLetter
from tests.inference_stubs import InferenceStub
from tests.integration.kafka_helpers import Broker, consume_all, new_group_id
from tests.integration.stream_support import (
    STUB_MODEL,
    ProcessorProcess,
    completed_ids,
    list_keys,
    processor_settings,
    queue_frame_events,
    stop_all,
    stub_model,
)

COUNT = 600
PREDICT = f"/models/{STUB_MODEL}/predict"
FAULTS = {"status:500": 0.1, "status:503": 0.1, "slow": 0.1, "reset": 0.05, "malformed_json": 0.03, "huge": 0.02}
PERMANENT = {"malformed_json": "inference_rejected", "huge": "inference_answer_too_large"}
MAX_PEAK_RSS_MIB = 1024  # 32 MiB answers are refused at the cap (inference.max_answer_bytes), never held whole

pytestmark = pytest.mark.timeout(300)


async def test_a_flaky_inference_service_loses_nothing_and_bounds_retries_and_memory(
    tansu: Broker,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
) -> None:
    bucket = s3_bucket()
    store = s3_store(bucket)
    topics = await queue_frame_events(tansu, store, bucket, COUNT)
    seed = random.randrange(2**32)

    async with InferenceStub([stub_model()], fault_rates=FAULTS, fault_seed=seed, slow_s=3.0) as stub:
        settings = processor_settings(
            tansu,
            storage_settings,
            tmp_path,
            topics=topics,
            group_id=new_group_id(),
            inference_urls=[stub.url],
            retry_budget_s=StreamSettings().retry_budget_s,
        )
        settings = settings.model_copy(update={"inference": settings.inference.model_copy(update={"timeout_s": 1.0})})
        process = await ProcessorProcess(settings, tmp_path, "faults").start()
        try:
            completed, letters = await ended(tansu, topics.completions, topics.dead_letters)
            peak_rss_mib = process.peak_rss_mb()
            tries = stub.requests[PREDICT]
            stub.fault_rates = {}  # the service behaves again: the dead letters are replayed
            summary = await replay_topic(settings, Selection(), progress=False)
            after_replay = await completed_ids(tansu, topics.completions, COUNT, timeout_s=60)
        finally:
            await stop_all([process])

    ids = {f"e-{index}" for index in range(COUNT)}
    letter_ids = {letter.event_id for letter in letters}
    assert completed | letter_ids == ids and not completed & letter_ids, f"every event ends once (seed {seed})"
    kinds = {letter.error_kind for letter in letters}
    assert kinds <= set(PERMANENT.values()), f"only the permanent answers dead-letter, got {kinds} (seed {seed})"
    injected_permanent = sum(stub.injected[fault] for fault in PERMANENT)
    assert 0 < len(letters) <= injected_permanent, f"{len(letters)} letters, {injected_permanent} permanent faults"
    assert stub.injected["status:503"] and stub.injected["slow"] and stub.injected["reset"], "the faults were met"
    # each event needs one good answer; a fault costs one more try, so tries ≈ COUNT / (1 - fault rate) ≈ 1.5 × COUNT
    assert tries <= 2 * COUNT, f"{tries} predict requests for {COUNT} events: retries are not bounded"
    assert peak_rss_mib < MAX_PEAK_RSS_MIB, f"peak RSS {peak_rss_mib:.0f} MiB"
    assert summary.replayed == len(letters)
    assert after_replay == ids, "after the replay every event is completed"
    assert len(await list_keys(store, "anonymized")) == COUNT


async def ended(broker: Broker, completions: str, dead_letters: str) -> tuple[set[str], list[DeadLetter]]:
    """Wait (up to 5 min) until every event has a completion or a dead letter; the completed ids and the letters."""
    completed: set[str] = set()
    letters: list[DeadLetter] = []
    for _ in range(60):
        completed = await completed_ids(broker, completions, COUNT, timeout_s=4)
        records = await consume_all(broker, dead_letters, COUNT, timeout_s=1)
        letters = [DeadLetter.model_validate_json(record.value or b"") for record in records]
        if len(completed | {letter.event_id for letter in letters}) >= COUNT:
            break
    return completed, letters

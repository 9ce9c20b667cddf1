"""The processor of deploy/docker-compose.yml, run with exactly the environment compose gives its container (the
image's ENV plus the service's ``environment``), only the addresses of other services replaced by test servers:

- ``kafka:9092`` → the test broker; ``http://minio:9000`` → the moto S3 endpoint; the output bucket → a fresh one;
- the mounted URL registry as it is: ``builtin``, the models in the processor's own process (no inference service);
- the bind-mounted paths (``/etc/anonymizer/...``) → their sources in deploy/; ``http.host:http.port`` → a free port.

The topics are the ones the compose file's ``kafka-topics`` service creates (same names, same partitions). A
MinIO-style bucket notification for an uploaded photo must end as an anonymized object and a completion event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from urllib.parse import quote_plus

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from obstore.store import S3Store

from schemas.events import CompletionEvent
from tests.deploy.compose import bind_mounts, load_compose, service_environment
from tests.frames import ASTRONAUT_FACE, astronaut
from tests.integration.kafka_helpers import Broker, Message, consume_all, produce
from tests.integration.servers import HOST, free_port
from tests.integration.stream_support import encode_jpeg, list_keys, read, region_change, upload, wait_until

pytestmark = pytest.mark.timeout(240)


def compose_environment_for_tests(
    broker: Broker, s3_endpoint: str, output_bucket: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(the compose environment, the same with every other service's address replaced by a test server's)."""
    compose = service_environment("processor")
    mounts = bind_mounts("processor")

    def on_host(path: str) -> str:
        for target, source in mounts.items():
            if path == target or path.startswith(target + "/"):
                return str(source / path.removeprefix(target).lstrip("/"))
        return path

    replaced = {key: on_host(value) if value.startswith("/etc/anonymizer") else value for key, value in compose.items()}
    replaced |= {
        "ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "ANONYMIZER_STORAGE__S3_ENDPOINT": s3_endpoint,
        "ANONYMIZER_STORAGE__OUTPUT_URL": f"s3://{output_bucket}/",
        "ANONYMIZER_HTTP__HOST": HOST,
        "ANONYMIZER_HTTP__PORT": str(free_port()),
    }
    return compose, replaced


async def create_compose_topics(broker: Broker) -> None:
    """The topics of the compose ``kafka-topics`` service, with its partition counts (kept if they exist)."""
    script = load_compose()["services"]["kafka-topics"]["command"][0]
    topics = [NewTopic(name, int(count), 1) for name, count in re.findall(r"--topic (\S+) --partitions (\d+)", script)]
    assert len(topics) == 3
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        for topic in topics:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([topic])
        await wait_until(
            lambda: _listed(admin, {topic.name for topic in topics}), 10, "compose topics visible", interval_s=0.1
        )
    finally:
        await admin.close()


async def _listed(admin: AIOKafkaAdminClient, names: set[str]) -> bool:
    return names <= set(await admin.list_topics())


def minio_notification(bucket: str, key: str, size: int, etag: str) -> bytes:
    """What MinIO's Kafka target publishes for a PUT (keys query-escaped: ``/`` is ``%2F``, a space ``+``)."""
    escaped = quote_plus(key)
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": "2026-11-26T08:00:00.000Z",
        "eventName": "s3:ObjectCreated:Put",
        "userIdentity": {"principalId": "anonymizer"},
        "requestParameters": {"principalId": "anonymizer", "region": "", "sourceIPAddress": "172.18.0.1"},
        "responseElements": {"x-amz-id-2": "dd9025bab4ad464b", "x-amz-request-id": "1879A5B3A2C0E4F1"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "anonymizer"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": escaped,
                "size": size,
                "eTag": etag,
                "contentType": "image/jpeg",
                "userMetadata": {"content-type": "image/jpeg"},
                "sequencer": "1879A5B3A2D3C7E2",
            },
        },
        "source": {"host": "172.18.0.1", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.95 mc"},
    }
    return orjson.dumps({"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{escaped}", "Records": [record]})


@contextlib.asynccontextmanager
async def processor(environment: Mapping[str, str], workdir: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``anonymizer run`` (the compose ``processor`` service's command) with ``environment`` and no other
    ANONYMIZER_* variable; SIGKILLed at exit if still running."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
    env |= {**environment, "PYTHONUNBUFFERED": "1"}
    log_path = workdir / "processor.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "processor",
            "run",
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def log_of(workdir: Path) -> str:
    return (workdir / "processor.log").read_text(errors="replace")[-4000:]


async def test_compose_processor_anonymizes_an_upload_announced_by_a_minio_notification(
    broker: Broker,
    s3_endpoint: str,
    s3_bucket: Callable[[], str],
    s3_store: Callable[[str], S3Store],
    tmp_path: Path,
) -> None:
    frames, output_bucket = s3_bucket(), s3_bucket()
    compose, environment = compose_environment_for_tests(broker, s3_endpoint, output_bucket)
    assert set(environment) == set(compose), "only values are replaced, no variable is added or dropped"
    unchanged = {key for key in compose if compose[key] == environment[key]}
    assert {
        "ANONYMIZER_KAFKA__INPUT_TOPIC",
        "ANONYMIZER_KAFKA__GROUP_ID",
        "ANONYMIZER_STORAGE__S3_ACCESS_KEY_ID",
    } <= unchanged
    await create_compose_topics(broker)

    photo = encode_jpeg(astronaut())
    key = "cam 7/2026-11-26 08:00:00.jpg"
    await upload(s3_store(frames), {key: photo})
    notification = minio_notification(frames, key, len(photo), "a3f1c2d4e5b6a7980f1e2d3c4b5a6978")

    async with processor(environment, tmp_path) as process:
        await produce(broker, environment["ANONYMIZER_KAFKA__INPUT_TOPIC"], [Message(notification)])
        outputs = s3_store(output_bucket)

        async def written() -> bool:
            assert process.returncode is None, log_of(tmp_path)
            return bool(await list_keys(outputs, ""))

        await wait_until(written, 120, "the anonymized object", interval_s=0.25)
        completions = await _completions(
            broker, environment["ANONYMIZER_KAFKA__COMPLETION_TOPIC"], f"s3://{frames}/{key}"
        )
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0, log_of(tmp_path)

    (output_key,) = await list_keys(outputs, "")
    assert output_key.endswith(f"/{frames}/{key}"), "outputs keep the source bucket and key under the hash"
    anonymized = await read(outputs, output_key)
    assert region_change(photo, anonymized, ASTRONAUT_FACE) > 20, "the face is hidden"
    assert region_change(photo, anonymized, (0, 500, 100, 512)) < 3, "the far background is kept"
    assert await list_keys(s3_store(frames), "") == [key], "nothing is written into the notified bucket"

    (completion,) = completions
    assert completion.status == "completed"
    assert completion.output == f"s3://{output_bucket}/{output_key}"
    assert completion.result is not None and completion.result.counts.get("face", 0) >= 1
    sources = {label.source for label in completion.result.labels}
    assert sources == {"builtin/centerface", "builtin/plate_reader"}, "by the models in the processor's own process"
    letters = await consume_all(broker, environment["ANONYMIZER_KAFKA__DEAD_LETTER_TOPIC"], 1, timeout_s=2)
    assert not [letter for letter in letters if frames.encode() in (letter.value or b"")]


async def _completions(broker: Broker, topic: str, source: str) -> list[CompletionEvent]:
    """The completion events of ``source`` (the compose topics are shared by the session: others are skipped)."""
    found: list[CompletionEvent] = []

    async def arrived() -> bool:
        records = await consume_all(broker, topic, 10_000, timeout_s=1)
        found[:] = [c for r in records if (c := CompletionEvent.model_validate_json(r.value or b"")).source == source]
        return bool(found)

    await wait_until(arrived, 30, f"the completion event of {source}", interval_s=0.2)
    return found


async def test_compose_processor_serves_health_and_readiness(
    broker: Broker,
    s3_endpoint: str,
    s3_bucket: Callable[[], str],
    tmp_path: Path,
) -> None:
    """What the Dockerfile's HEALTHCHECK and the Kubernetes probes ask: /health (alive) and /ready on http.port."""
    _, environment = compose_environment_for_tests(broker, s3_endpoint, s3_bucket())
    await create_compose_topics(broker)
    base = f"http://{HOST}:{environment['ANONYMIZER_HTTP__PORT']}"
    async with processor(environment, tmp_path) as process:

        async def answers(path: str) -> bool:
            assert process.returncode is None, log_of(tmp_path)
            return await asyncio.to_thread(_status, base + path) == 200

        await wait_until(lambda: answers("/health"), 30, "/health", interval_s=0.2)
        await wait_until(lambda: answers("/ready"), 30, "/ready", interval_s=0.2)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0, log_of(tmp_path)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - the processor under test
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return 0

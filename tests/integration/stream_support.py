"""Helpers of the stream processor's integration tests: frames, events of every kind, processor settings (also as
environment variables for a processor subprocess), committed offsets, and waiting for results.

The stub inference service answers every frame with one box in its middle, so the tests know exactly which
pixels must change; the built-in detectors are used only where real faces must be found.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus
from xml.etree import ElementTree

import cv2
import numpy as np
import obstore
import orjson
from aiokafka import TopicPartition
from obstore.store import S3Store
from pydantic import BaseModel, SecretStr

from processor.configuration import default_configuration
from processor.frames import BgrImage
from processor.service import serve
from processor.settings import HttpSettings, InferenceSettings, Settings, StorageSettings, StreamSettings
from processor.stream.worker import StreamStats
from schemas.events import CompletionEvent
from tests.conftest import LOOPBACK
from tests.frames import astronaut
from tests.inference_stubs import StubModel
from tests.integration.kafka_helpers import Broker, Message, consume_all, create_topic, produce

STUB_MODEL = "stub_detector"
CENTRE_BOX = {"left": 0.25, "top": 0.25, "right": 0.75, "bottom": 0.75}  # of the frame, see stub_model()
TINY_SIDE = 96


def stub_model(side: int = TINY_SIDE) -> StubModel:
    """A detection model that finds one "face" in the middle half of a ``side``×``side`` frame."""
    box = {key: value * side for key, value in CENTRE_BOX.items()}
    return StubModel(
        STUB_MODEL,
        "detection",
        ["face"],
        boxes=[{"ObjectClassName": "face", "ObjectClassId": 0, "confidence": 90, "coordinates": box}],
    )


def stub_configuration(technique: str = "blackening", label: str = "face", url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_name": STUB_MODEL,
        "class_name": label,
        "anonymization_technique": technique,
        "inference_type": "detection",
        "anonymization_degree": 1.0,
    }
    if url is not None:
        entry["url"] = url
    return {"sensitive_info": [entry]}


def builtin_configuration() -> dict[str, Any]:
    return default_configuration().model_dump(mode="json")


def tiny_frames(count: int = 8, side: int = TINY_SIDE) -> list[bytes]:
    """``count`` different small JPEGs cut from a real photo (each a shifted crop, so each output differs)."""
    photo = astronaut()
    frames = []
    for index in range(count):
        top, left = 8 * index % 200, 12 * index % 200
        crop = cv2.resize(photo[top : top + 300, left : left + 300], (side, side), interpolation=cv2.INTER_AREA)
        frames.append(encode_jpeg(crop))
    return frames


def encode_jpeg(image: BgrImage, quality: int = 90) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def decode(data: bytes) -> BgrImage:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not an image"
    return image


def centre_is_black(data: bytes) -> bool:
    """True when the stub's box (middle half of the frame) was blackened and the corners were not."""
    image = decode(data).astype(np.int16)
    height, width = image.shape[:2]
    centre = image[height * 3 // 8 : height * 5 // 8, width * 3 // 8 : width * 5 // 8]
    corner = image[: height // 8, : width // 8]
    return bool(centre.max() < 24 and corner.mean() > 24)


def region_change(before: bytes, after: bytes, box: tuple[int, int, int, int]) -> float:
    """Mean absolute pixel difference inside ``box`` (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box
    a = decode(before)[y1:y2, x1:x2].astype(np.int16)
    b = decode(after)[y1:y2, x1:x2].astype(np.int16)
    return float(np.abs(a - b).mean())


# --- events of every kind -------------------------------------------------------------------------------------------


def frame_event(event_id: str, source: str, configuration: Any = None) -> Message:
    body: dict[str, Any] = {"id": event_id, "source": source, "attributes": {"camera": "cam-7"}}
    if configuration is not None:
        body["configuration"] = configuration
    return Message(orjson.dumps(body), key=event_id.encode())


def s3_notification(bucket: str, keys: Iterable[str], *, minio: bool = False) -> Message:
    """An AWS (or MinIO: ``s3:`` prefixed names) bucket notification, one record per key, keys form-encoded."""
    name = "s3:ObjectCreated:Put" if minio else "ObjectCreated:Put"
    records = [
        {
            "eventName": name,
            "eventSource": "aws:s3",
            "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
        }
        for key in keys
    ]
    return Message(orjson.dumps({"Records": records}))


def cloud_event(event_id: str, source: str, *, binary: bool) -> Message:
    """A CloudEvent carrying a frame event: structured (one JSON document) or binary (``ce_`` headers)."""
    data = {"source": source}
    if binary:
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_type", b"com.example.frame.uploaded"),
            ("ce_source", b"/cameras/7"),
            ("content-type", b"application/json"),
        ]
        return Message(orjson.dumps(data), headers=headers)
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "type": "com.example.frame.uploaded",
        "source": "/cameras/7",
        "datacontenttype": "application/json",
        "data": data,
    }
    return Message(orjson.dumps(envelope), headers=[("content-type", b"application/cloudevents+json")])


# --- storage --------------------------------------------------------------------------------------------------------


async def upload(store: S3Store, objects: dict[str, bytes], concurrency: int = 32) -> None:
    limit = asyncio.Semaphore(concurrency)

    async def one(key: str, data: bytes) -> None:
        async with limit:
            await obstore.put_async(store, key, data)

    await asyncio.gather(*(one(key, data) for key, data in objects.items()))


async def list_keys(store: S3Store, prefix: str) -> list[str]:
    keys: list[str] = []
    async for chunk in obstore.list(store, prefix, chunk_size=1000):
        keys.extend(meta["path"] for meta in chunk)
    return keys


async def read(store: S3Store, key: str) -> bytes:
    result = await obstore.get_async(store, key)
    return bytes(await result.bytes_async())


# --- processor settings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    input: str
    completions: str
    dead_letters: str


async def new_topics(broker: Broker, partitions: int = 3) -> Topics:
    return Topics(
        await create_topic(broker, partitions, prefix="frames"),
        await create_topic(broker, 1, prefix="done"),
        await create_topic(broker, 1, prefix="dlq"),
    )


async def queue_frame_events(broker: Broker, store: S3Store, bucket: str, count: int) -> Topics:
    """``count`` tiny frames uploaded to ``bucket`` (``cam/0000.jpg`` …) and one FrameEvent each (``e-0`` …, the
    stored configuration ``stub``) produced to the input topic of three new 3-partition topics."""
    frames = tiny_frames()
    objects = {f"cam/{index:04d}.jpg": frames[index % len(frames)] for index in range(count)}
    await upload(store, objects)
    topics = await new_topics(broker, 3)
    events = [frame_event(f"e-{index}", f"s3://{bucket}/{key}", "stub") for index, key in enumerate(objects)]
    await produce(broker, topics.input, events)
    return topics


async def completed_ids(broker: Broker, topic: str, count: int, timeout_s: float) -> set[str]:
    """The ids on the completion topic, read until ``count`` different ones or ``timeout_s`` (a redelivery may
    repeat some)."""
    deadline = time.monotonic() + timeout_s
    ids: set[str] = set()
    while len(ids) < count and time.monotonic() < deadline:
        wait_s = min(3.0, max(0.1, deadline - time.monotonic()))
        records = await consume_all(broker, topic, 3 * count, timeout_s=wait_s)
        ids = {CompletionEvent.model_validate_json(record.value or b"").id for record in records}
    return ids


def processor_settings(
    broker: Broker | None,
    storage: StorageSettings,
    workdir: Path,
    *,
    topics: Topics | None = None,
    group_id: str | None = None,
    inference_urls: Iterable[str] = (),
    **stream: Any,
) -> Settings:
    """Settings of a processor on ``broker`` (None: the embedded inbox) with the stub configuration as the default
    (stored as ``stub``) and the URL registry ``builtin`` + ``inference_urls``."""
    workdir.mkdir(parents=True, exist_ok=True)
    registry = workdir / f"urls-{uuid.uuid4().hex}.json"
    registry.write_bytes(orjson.dumps({"urls": ["builtin", *inference_urls]}))
    configurations = workdir / "configurations"
    configurations.mkdir(exist_ok=True)
    (configurations / "stub.json").write_bytes(orjson.dumps(stub_configuration()))
    stream_options: dict[str, Any] = {
        "configurations_dir": configurations,
        "default_configuration": configurations / "stub.json",
        "commit_interval_s": 0.2,
        "retry_backoff_s": 0.05,
        "retry_backoff_max_s": 0.2,
        "retry_budget_s": 0.0,  # dead letters after max_attempts alone; test_outages.py rides the budget out
        "shutdown_timeout_s": 10.0,
        "completions_file": workdir / "completions.jsonl",
        **stream,
    }
    sections: dict[str, Any] = {
        "http": HttpSettings(port=0),  # health and metrics on a free port: processors run side by side
        "storage": storage,
        "inference": InferenceSettings(
            url_configuration=registry,
            per_url_concurrency=64,
            total_concurrency=64,
            timeout_s=10.0,
            allowed_networks=LOOPBACK,
        ),
        "stream": StreamSettings(**stream_options),
    }
    if broker is not None:
        assert topics is not None and group_id is not None
        sections["kafka"] = broker.kafka_settings(
            input_topic=topics.input,
            completion_topic=topics.completions,
            dead_letter_topic=topics.dead_letters,
            group_id=group_id,
            commit_timeout_s=5.0,
        )
    return Settings(**sections)


def settings_env(settings: Settings) -> dict[str, str]:
    """``ANONYMIZER_<SECTION>`` variables (JSON, secrets revealed) that make a subprocess read ``settings``."""
    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        plain = _plain(value)
        env[f"ANONYMIZER_{name.upper()}"] = plain if isinstance(plain, str) else json.dumps(plain)
    return env


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return value


# --- offsets and waiting --------------------------------------------------------------------------------------------


async def committed_offsets(broker: Broker, topic: str, group_id: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (0 when none), read without joining the group."""
    consumer = broker.consumer(group_id=group_id)
    await consumer.start()
    try:
        found = {}
        for number in range(partitions):
            committed = await consumer.committed(TopicPartition(topic, number))
            found[number] = committed if committed is not None else 0
        return found
    finally:
        await consumer.stop()


def ends(metadata: Iterable[Any], partitions: int) -> dict[int, int]:
    """Offset after the last produced record of each partition, from ``produce``'s record metadata."""
    result = dict.fromkeys(range(partitions), 0)
    for item in metadata:
        result[item.partition] = max(result[item.partition], item.offset + 1)
    return result


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


# --- the processor in-process -------------------------------------------------------------------------------------


class Processor:
    """``serve`` as a background task of the test, stopped like SIGTERM would (the stop event)."""

    def __init__(self, settings: Settings) -> None:
        self.stats = StreamStats()
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(serve(settings, self.stop, stats=self.stats))

    @property
    def done(self) -> int:
        return self.stats.completed + self.stats.dead_lettered

    async def wait_for(self, count: int, timeout_s: float) -> None:
        await wait_until(lambda: self.task.done() or self.done >= count, timeout_s, f"{count} events done")
        if self.task.done():
            self.task.result()  # raises what stopped it

    async def close(self) -> StreamStats:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)
        return self.stats


# --- the processor as a subprocess ----------------------------------------------------------------------------------


class ProcessorProcess:
    """``python -m processor run`` with ``settings`` passed as environment variables, logging to a file."""

    def __init__(self, settings: Settings, workdir: Path, name: str, argv: Iterable[str] = ()) -> None:
        self.settings = settings
        self.log_path = workdir / f"{name}.log"
        self._argv = [sys.executable, "-m", "processor", "run", *argv]
        self._workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> ProcessorProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
        env.update(settings_env(self.settings), PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self._argv, env=env, cwd=self._workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: int) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(number)

    async def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout_s)

    def rss_mb(self) -> float:
        """Resident memory now (``VmRSS``), in MiB."""
        return self._status_mb("VmRSS")

    def peak_rss_mb(self) -> float:
        """The most resident memory it has held so far (``VmHWM``), in MiB."""
        return self._status_mb("VmHWM")

    def _status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no {field}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health_url(self) -> str | None:
        """``http://host:port/`` of its health and metrics server (a free port), once it has logged it."""
        found = re.findall(r"health and metrics on (http://\S+/)", self.log())
        return found[0] if found else None


async def stop_all(processes: Iterable[ProcessorProcess]) -> None:
    """Teardown: SIGKILL whatever still runs and reap it."""
    for process in processes:
        if process.process is not None and process.process.returncode is None:
            process.signal(signal.SIGKILL)
            await process.wait(10)


# --- S3 versioning (to see every write of an output key) ------------------------------------------------------------

_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def enable_versioning(endpoint: str, bucket: str) -> None:
    body = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
    request = urllib.request.Request(  # noqa: S310 - our moto server
        f"{endpoint}/{bucket}?versioning", data=body, method="PUT", headers={"Content-Type": "application/xml"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our moto server
        response.read()


def object_versions(endpoint: str, bucket: str, prefix: str) -> dict[str, list[str]]:
    """Key → the ETag (content MD5) of every version ever written under ``prefix``."""
    versions: dict[str, list[str]] = {}
    marker: dict[str, str] = {}
    while True:
        query = urllib.parse.urlencode({"versions": "", "prefix": prefix, **marker})
        with urllib.request.urlopen(f"{endpoint}/{bucket}?{query}", timeout=30) as response:  # noqa: S310
            root = ElementTree.fromstring(response.read())  # noqa: S314 - our moto server
        for version in root.iter(f"{_S3_NS}Version"):
            key, etag = version.findtext(f"{_S3_NS}Key"), version.findtext(f"{_S3_NS}ETag")
            assert key is not None and etag is not None
            versions.setdefault(key, []).append(etag)
        if root.findtext(f"{_S3_NS}IsTruncated") != "true":
            return versions
        marker = {
            "key-marker": root.findtext(f"{_S3_NS}NextKeyMarker") or "",
            "version-id-marker": root.findtext(f"{_S3_NS}NextVersionIdMarker") or "",
        }

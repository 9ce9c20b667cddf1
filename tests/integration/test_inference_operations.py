"""``anonymizer infer`` as an operator runs it: listening where ``ANONYMIZER_HTTP__*`` says when no flag does, and
answering ``/health``, ``/ready`` (models loaded) and ``/metrics``; and each role's ``/metrics`` only what means
something there."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from processor.api.app import create_app
from processor.inference.builtin.models import BuiltinModels
from processor.inference.server import create_inference_app
from processor.settings import InferenceSettings, Settings
from tests.conftest import LOOPBACK, encode_jpeg
from tests.frames import BgrImage
from tests.inference_stubs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

STREAM_ONLY = ("anonymizer_events_consumed", "anonymizer_consumer_lag", "anonymizer_paused_partitions")


def families(exposition: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(exposition)}


async def wait_for(session: aiohttp.ClientSession, url: str, status: int, timeout_s: float = 60.0) -> Any:
    for _ in range(int(timeout_s / 0.1)):
        try:
            async with session.get(url) as response:
                if response.status == status:
                    return await response.json()
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {timeout_s} s")


@pytest.fixture
async def infer_from_environment() -> AsyncIterator[str]:
    """``anonymizer infer`` with no flag at all: host and port only from the environment, as in a container."""
    port = free_port()
    environment = {**os.environ, "ANONYMIZER_HTTP__HOST": "127.0.0.1", "ANONYMIZER_HTTP__PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "processor",
        "infer",
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()


async def test_infer_listens_where_the_environment_says_and_reports_health_readiness_and_metrics(
    infer_from_environment: str, astronaut_bgr: BgrImage
) -> None:
    url = infer_from_environment
    async with aiohttp.ClientSession() as session:
        alive = await wait_for(session, url + "health", 200)
        assert alive["data"]["alive"] is True
        ready = await wait_for(session, url + "ready", 200)
        assert ready["data"]["models"]["loaded"] is True and "centerface" in ready["data"]["models"]["names"]

        data = FormData()
        data.add_field("input_data", encode_jpeg(astronaut_bgr), filename="a.jpg", content_type="image/jpeg")
        async with session.post(url + "models/centerface/predict", data=data) as response:
            assert response.status == 200
        async with session.get(url + "metrics") as response:
            assert response.status == 200 and response.content_type == "text/plain"
            exposition = await response.text()
    found = families(exposition)
    requests = found["anonymizer_http_requests"]
    predicted = [
        sample
        for sample in requests.samples
        if sample.labels == {"route": "/models/{model}/predict", "method": "POST", "status": "200"}
    ]
    assert predicted and predicted[0].value >= 1
    assert found["anonymizer_http_request_duration_seconds"].type == "histogram"
    assert found["anonymizer_http_requests_in_flight"].type == "gauge"
    assert "anonymizer_build_info" in found and "_created" not in exposition
    assert not any(name in found for name in (*STREAM_ONLY, "anonymizer_frames_anonymized"))


class GatedModels(BuiltinModels):
    """The real models, whose warm-up waits for the test to open a gate (to see /ready before and after)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def warm_up(self) -> None:
        if not self.gate.wait(30):
            raise TimeoutError("the test never opened the gate")
        super().warm_up()


async def test_ready_is_503_until_the_models_are_loaded() -> None:
    models = GatedModels()
    async with TestClient(TestServer(create_inference_app(Settings(), models), host="127.0.0.1")) as client:
        not_ready = await client.get("/ready")
        assert not_ready.status == 503
        assert (await not_ready.json())["data"]["models"]["loaded"] is False
        assert (await client.get("/health")).status == 200  # alive meanwhile
        models.gate.set()
        for _ in range(300):
            if (await client.get("/ready")).status == 200:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("/ready never turned 200")


async def test_serve_exports_no_stream_metrics(tmp_path: Path) -> None:
    registry = tmp_path / "url_configuration.json"
    registry.write_text('{"urls": ["builtin"]}')
    settings = Settings(inference=InferenceSettings(url_configuration=registry, allowed_networks=LOOPBACK))
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        await client.get("/list_urls")
        exposition = await (await client.get("/metrics")).text()
    found = families(exposition)
    assert not any(name in found for name in STREAM_ONLY)
    assert {"anonymizer_frames_anonymized", "anonymizer_http_requests", "anonymizer_build_info"} <= set(found)

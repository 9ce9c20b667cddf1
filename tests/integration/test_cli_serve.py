"""``anonymizer serve`` as a real process on a real port: serves the API, logs JSON lines, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import LOOPBACK_ENV
from tests.inference_stubs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "url_configuration.json"
    path.write_text('{"urls": ["builtin"]}')
    return path


def start(registry: Path, port: int, stderr: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ANONYMIZER_INFERENCE__URL_CONFIGURATION": str(registry),
        "ANONYMIZER_LOG_FORMAT": "json",
        **LOOPBACK_ENV,
    }
    with stderr.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "processor", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


@pytest.fixture
def served(registry: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """The base URL of a running ``anonymizer serve``, its process and its stderr file; stopped at teardown."""
    port = free_port()
    stderr = tmp_path / "serve.stderr"
    process = start(registry, port, stderr)
    try:
        yield f"http://127.0.0.1:{port}", process, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def wait_ready(base: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.poll() is None, "anonymizer serve exited early"
            try:
                async with session.get(f"{base}/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base} not ready within {timeout_s} s")


async def test_serve_answers_logs_json_and_stops_cleanly_on_sigterm(
    served: tuple[str, subprocess.Popen[bytes], Path], astronaut_jpeg: bytes
) -> None:
    base, process, stderr = served
    await wait_ready(base, process)
    configuration = {
        "sensitive_info": [
            {
                "model_name": "centerface",
                "class_name": "face",
                "anonymization_technique": "pixelating",
                "inference_type": "detection",
                "anonymization_degree": 0.2,
            }
        ]
    }
    form = aiohttp.FormData()
    form.add_field("image", io.BytesIO(astronaut_jpeg), filename="astronaut.jpg")
    form.add_field("configuration", json.dumps(configuration).encode(), filename="user_configuration.json")
    async with aiohttp.ClientSession() as session, session.post(f"{base}/anonymize/", data=form) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "image/jpeg"
        assert json.loads(response.headers["X-Anonymizer-Counts"]) == {"face": 1}

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    lines = [json.loads(line) for line in stderr.read_text().splitlines()]  # every line is one JSON object
    assert any(line["logger"] == "processor.api.app" and "anonymization API on" in line["message"] for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_serve_refuses_a_broken_registry_file(registry: Path, tmp_path: Path) -> None:
    registry.write_text('{"urls": "not a list"}')
    stderr = tmp_path / "serve.stderr"
    process = start(registry, free_port(), stderr)
    try:
        assert process.wait(60) == 2
    finally:
        if process.poll() is None:
            process.kill()
    assert "not a valid URL configuration" in stderr.read_text()


def test_serve_logs_the_absolute_path_of_a_relative_registry(tmp_path: Path) -> None:
    registry = tmp_path / "jsonFiles" / "url_configuration.json"
    registry.parent.mkdir()
    registry.write_text('{"urls": ["builtin"]}')
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
    stderr = tmp_path / "serve.stderr"
    with stderr.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "processor", "serve", "--port", str(free_port())],
            env={**environment, **LOOPBACK_ENV},
            cwd=tmp_path,  # the default inference.url_configuration, jsonFiles/url_configuration.json, is relative
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 60
        while "anonymization API on" not in stderr.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, stderr.read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert f"inference URL registry: {registry} (changed by /set_url)" in stderr.read_text()

"""A script written the way the original anonymization API's users wrote theirs (``requests``, form fields, reading
``response.json()["data"]`` and ``["face"]``), against a real ``anonymizer serve`` process: the registry and
capabilities endpoints answer the original's bodies byte for byte (compact JSON, as its FastAPI wrote them), with
honest status codes; the image comes back anonymized."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from processor.anonymize.registry import technique_names
from tests.conftest import LOOPBACK_ENV
from tests.inference_stubs import InferenceStub, StubModel
from tests.integration.servers import HOST, ServerProcess, free_port, start_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FACE_BOX = {
    "ObjectClassName": "face",
    "ObjectClassId": 0,
    "confidence": 99,
    "coordinates": {"left": 170, "top": 40, "right": 280, "bottom": 200},
}
FACE = (slice(60, 180), slice(190, 260))  # rows, columns inside FACE_BOX


def original(document: Any) -> bytes:
    """``document`` as the original API's FastAPI wrote it (``JSONResponse``: compact, UTF-8)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def succeeded(data: Any) -> bytes:
    return original({"data": data, "error": "", "success": True})


def failed(error: str) -> bytes:
    return original({"data": None, "error": error, "success": False})


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def serve(registry: Path, log_dir: Path, **variables: str) -> ServerProcess:
    """``anonymizer serve`` on a free port, the registry at ``registry``, ``variables`` added to its environment."""
    environment = {
        **os.environ,
        "ANONYMIZER_INFERENCE__URL_CONFIGURATION": str(registry),
        "ANONYMIZER_INFERENCE__MAX_ATTEMPTS": "1",
        **LOOPBACK_ENV,
        **variables,
    }
    return start_server(
        "serve",
        lambda port: [sys.executable, "-m", "processor", "serve", "--port", str(port)],
        ready,
        log_dir,
        timeout_s=60,
        env=environment,
    )


def a_users_script(api: str, detector: str, folder: Path) -> None:
    """What the original's README taught: register the detector, read what it offers, anonymize, clean up."""
    response = requests.get(api + "list_urls", timeout=30)
    assert (response.status_code, response.content) == (200, succeeded({"urls": []}))

    response = requests.post(api + "set_url", data={"url": detector}, timeout=30)
    assert (response.status_code, response.content) == (200, succeeded("url added successfully"))
    assert response.json()["data"] == "url added successfully"
    response = requests.post(api + "set_url", data={"url": detector}, timeout=30)
    assert (response.status_code, response.content) == (200, succeeded("url already exist"))
    response = requests.get(api + "list_urls", timeout=30)
    assert (response.status_code, response.content) == (200, succeeded({"urls": [detector]}))

    response = requests.get(api + "available_methods/", timeout=30)
    methods = {"face": {"detection": {detector: ["faces"]}, "technique": technique_names()}}
    assert (response.status_code, response.content) == (200, original(methods))
    url, models = next(iter(response.json()["face"]["detection"].items()))  # the scripts read ["face"]

    configuration = folder / "user_configuration.json"
    entry = {
        "model_name": models[0],
        "class_name": "face",
        "anonymization_technique": "blackening",
        "inference_type": "detection",
        "anonymization_degree": 1,
        "url": url,
    }
    configuration.write_text(json.dumps({"sensitive_info": [entry]}))
    with (folder / "frame.jpg").open("rb") as image, configuration.open("rb") as config:
        response = requests.post(api + "anonymize/", files={"image": image, "configuration": config}, timeout=60)
    assert response.status_code == 200, response.text
    anonymized = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert anonymized is not None and anonymized[FACE].max() < 20  # blackened

    configuration.write_text(json.dumps({"sensitive_info": [entry | {"anonymization_degree": 2}]}))
    with (folder / "frame.jpg").open("rb") as image, configuration.open("rb") as config:
        response = requests.post(api + "anonymize/", files={"image": image, "configuration": config}, timeout=60)
    expected = original(
        {
            "data": ["sensitive_info[0].anonymization_degree: Input should be less than or equal to 1"],
            "error": "Some data in your configuration file need to be modified. Check the /available_methods/ endpoint",
            "success": False,
        }
    )
    assert (response.status_code, response.content) == (422, expected)
    assert response.headers["X-Anonymizer-Error-Kind"] == "invalid_configuration"

    refused_port = free_port()  # nothing listens there
    response = requests.post(api + "set_url", data={"url": f"http://{HOST}:{refused_port}/"}, timeout=30)
    assert (response.status_code, response.content) == (503, failed("url trying to add is not reachable"))
    assert response.headers["X-Anonymizer-Error-Kind"] == "inference_unavailable"
    response = requests.post(api + "set_url", data={"url": "ftp://example.invalid/"}, timeout=30)
    expected = failed("wrong url format. expected format: http://ip:port/")
    assert (response.status_code, response.content) == (422, expected)

    response = requests.post(api + "remove_url", data={"url": detector}, timeout=30)
    assert (response.status_code, response.content) == (200, succeeded(["url removed successfully"]))
    response = requests.post(api + "remove_url", data={"url": detector}, timeout=30)
    assert (response.status_code, response.content) == (404, failed("url is not present in config file"))
    assert response.headers["X-Anonymizer-Error-Kind"] == "unregistered_url"

    requests.post(api + "set_url", data={"url": "builtin"}, timeout=30)
    response = requests.post(api + "remove_all_urls", timeout=30)
    assert (response.status_code, response.content) == (200, succeeded("all urls removed successfully"))
    response = requests.get(api + "available_methods/", timeout=30)
    assert (response.status_code, response.content) == (200, original({}))


async def test_a_script_written_for_the_original_api_gets_its_exact_answers(
    tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    registry = tmp_path / "url_configuration.json"
    registry.write_text('{"urls": []}')
    (tmp_path / "frame.jpg").write_bytes(astronaut_jpeg)
    async with InferenceStub([StubModel("faces", "detection", ["face"], boxes=[FACE_BOX])]) as stub:
        server = await asyncio.to_thread(serve, registry, tmp_path)
        try:
            await asyncio.to_thread(a_users_script, f"http://{server.address}/", stub.url, tmp_path)
        finally:
            server.stop()
    assert json.loads(registry.read_text()) == {"urls": []}

"""A password planted in an inference URL (``http://user:pass@host/``) never shows: API answers (set_url,
list_urls, available_methods, ready, metrics, errors), logs, completion events and dead letters; and it reaches
the service as written (mixed case kept, sent as HTTP Basic credentials)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from processor.api.app import create_app
from processor.settings import BuiltinSettings, InferenceSettings, Settings
from tests.conftest import LOOPBACK, LOOPBACK_ENV
from tests.inference_stubs import InferenceStub, StubModel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

USER, PASSWORD = "Camera-Ops", "S3cr3t-MiXeD-Pa55"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FACE_BOX = {
    "ObjectClassName": "face",
    "ObjectClassId": 0,
    "confidence": 99,
    "coordinates": {"left": 170, "top": 40, "right": 280, "bottom": 200},
}


def planted(stub: InferenceStub) -> str:
    return stub.url.replace("http://", f"http://{USER}:{PASSWORD}@")


def shown(stub: InferenceStub) -> str:
    return stub.url.replace("http://", "http://***@")


def configuration(url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_name": "faces",
        "class_name": "face",
        "anonymization_technique": "blackening",
        "inference_type": "detection",
        "anonymization_degree": 1.0,
    }
    return {"sensitive_info": [entry | ({"url": url} if url else {})]}


def form(image: bytes, config: dict[str, Any]) -> FormData:
    data = FormData()
    data.add_field("image", io.BytesIO(image), filename="frame.jpg", content_type="application/octet-stream")
    data.add_field("configuration", json.dumps(config).encode(), filename="user_configuration.json")
    return data


def assert_no_secret(text: str, where: str) -> None:
    assert PASSWORD not in text and PASSWORD.lower() not in text, f"the password shows in {where}"
    assert USER not in text and USER.lower() not in text, f"the user name shows in {where}"


async def test_the_api_and_its_logs_never_show_the_password(
    tmp_path: Path, astronaut_jpeg: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    registry = tmp_path / "url_configuration.json"
    registry.write_text('{"urls": []}')
    settings = Settings(
        inference=InferenceSettings(
            url_configuration=registry, max_attempts=1, connect_timeout_s=2, allowed_networks=LOOPBACK
        ),
        builtin=BuiltinSettings(workers=1),
    )
    answers: list[str] = []
    stub = InferenceStub([StubModel("faces", "detection", ["face"], boxes=[FACE_BOX])])
    async with stub, TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:

        async def keep(response: Any) -> Any:
            body = (await response.read()).decode(errors="replace")
            answers.append(f"{response.status} {dict(response.headers)} {body}")
            return response

        added = await keep(await client.post("/set_url", data={"url": planted(stub)}))
        assert added.status == 200 and (await added.json())["data"] == "url added successfully"
        again = await keep(await client.post("/set_url", data={"url": planted(stub)}))
        assert (await again.json())["data"] == "url already exist"
        listed = await keep(await client.get("/list_urls"))
        assert (await listed.json())["data"]["urls"] == [shown(stub)]
        state = await keep(await client.get("/urls"))
        assert [url["url"] for url in (await state.json())["data"]["urls"]] == [shown(stub)]
        methods = await keep(await client.get("/available_methods/"))
        assert (await methods.json())["face"]["detection"] == {shown(stub): ["faces"]}
        await keep(await client.get("/ready"))
        for config in (configuration(), configuration(planted(stub)), configuration(shown(stub))):
            response = await keep(await client.post("/anonymize/", data=form(astronaut_jpeg, config)))
            assert response.status == 200 and json.loads(response.headers["X-Anonymizer-Counts"]) == {"face": 1}
        stub.fail_next("status:500")
        failed = await keep(await client.post("/anonymize/", data=form(astronaut_jpeg, configuration())))
        assert failed.status == 503 and shown(stub) in (await failed.json())["error"]
        stub.fail_next("success_false")
        rejected = await keep(await client.post("/anonymize/", data=form(astronaut_jpeg, configuration())))
        assert rejected.status == 502
        unknown = planted(stub).replace(USER, USER + "x").replace("127.0.0.1", "127.0.0.2")
        await keep(await client.post("/anonymize/", data=form(astronaut_jpeg, configuration(unknown))))
        await keep(await client.get("/metrics"))
        removed = await keep(await client.post("/remove_url", data={"url": planted(stub)}))
        assert removed.status == 200 and (await removed.json())["data"] == ["url removed successfully"]
        assert (await keep(await client.post("/remove_url", data={"url": planted(stub)}))).status == 404
        refused = await keep(await client.post("/set_url", data={"url": planted(stub) + "x"}))  # not an API
        assert refused.status == 422 and shown(stub) + "x/" in refused.headers["X-Anonymizer-Error-Detail"]

    for answer in answers:
        assert_no_secret(answer, f"an answer: {answer[:200]}")
    assert_no_secret(caplog.text, "the logs")
    assert stub.authorizations and set(stub.authorizations) == {BASIC}, "sent as written, case kept"


async def test_completion_events_and_dead_letters_never_show_the_password(
    tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "a.jpg").write_bytes(astronaut_jpeg)
    completions = tmp_path / "out" / "completions.jsonl"
    async with InferenceStub([StubModel("faces", "detection", ["face"], boxes=[FACE_BOX])]) as stub:
        registry = tmp_path / "url_configuration.json"
        registry.write_text(json.dumps({"urls": [planted(stub)]}))
        wrong_label = configuration(planted(stub))
        wrong_label["sensitive_info"][0]["class_name"] = "cat"  # permanent: dead-lettered, naming the URL
        inbox = tmp_path / "events.jsonl"
        events_in = [
            {"id": "good", "source": f"file://{frames / 'a.jpg'}", "configuration": configuration(planted(stub))},
            {"id": "bad", "source": f"file://{frames / 'a.jpg'}", "configuration": wrong_label},
        ]
        inbox.write_text("".join(json.dumps(event) + "\n" for event in events_in))
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
        env |= {
            **LOOPBACK_ENV,
            "ANONYMIZER_INFERENCE__URL_CONFIGURATION": str(registry),
            "ANONYMIZER_STORAGE__FILE_ROOT": str(tmp_path),
            "ANONYMIZER_LOG_LEVEL": "DEBUG",
        }
        argv = [sys.executable, "-m", "processor", "run", "--inbox", str(inbox), "--completions", str(completions)]
        finished = await asyncio.to_thread(
            subprocess.run, argv, cwd=tmp_path, env=env, capture_output=True, timeout=100, check=False
        )
    logs = finished.stdout.decode() + finished.stderr.decode()
    assert finished.returncode == 1, logs[-3000:]
    events = completions.read_text()
    dead_letters = (tmp_path / "out" / "completions.dead-letter.jsonl").read_text()
    assert len(events.splitlines()) == 1 and len(dead_letters.splitlines()) == 1, logs[-3000:]
    assert shown(stub) in events and shown(stub) in dead_letters  # the URL used, as shown
    assert_no_secret(events, "completion events")
    assert_no_secret(logs, "the logs")
    assert_no_secret(dead_letters, "dead letters")  # the payload is kept as base64, as the producer sent it
    letter = json.loads(dead_letters)
    assert_no_secret(letter["error_message"], "the dead letter's message")
    # the dead letter keeps the original payload (the producer's own bytes, with the URL it wrote): only that
    assert base64.b64decode(letter["payload_base64"]) == (json.dumps(events_in[1])).encode()
    assert set(stub.authorizations) == {BASIC}

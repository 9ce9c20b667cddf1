"""Broken and slow request bodies, sent byte for byte over a real socket: a broken multipart framing is a 400 with a
reason, a body that trickles in is a 408 once ``http.body_timeout_s`` has passed, and the API keeps answering."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from processor.api.app import create_app
from processor.configuration import default_configuration
from processor.settings import BuiltinSettings, HttpSettings, InferenceSettings, Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BOUNDARY = b"xyz"
CONFIGURATION = default_configuration().model_dump_json().encode()


def part(name: str, body: bytes, filename: bytes = b"") -> bytes:
    named = b'; filename="' + filename + b'"' if filename else b""
    disposition = b'Content-Disposition: form-data; name="' + name.encode() + b'"' + named
    return b"--" + BOUNDARY + b"\r\n" + disposition + b"\r\n\r\n" + body + b"\r\n"


def request(path: str, body: bytes, content_type: bytes = b"multipart/form-data; boundary=" + BOUNDARY) -> bytes:
    head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    return head + b"Content-Type: " + content_type + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body


async def exchange(port: int, data: bytes) -> tuple[int, dict[str, Any]]:
    """Send ``data`` (a whole request, or the start of one) and read the answer: its status and JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    registry = tmp_path / "url_configuration.json"
    registry.write_text(json.dumps({"urls": ["builtin"]}))
    settings = Settings(
        inference=InferenceSettings(url_configuration=registry),
        http=HttpSettings(body_timeout_s=2),
        builtin=BuiltinSettings(workers=1),
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/anonymize/", part("image", b"\xff\xd8", filename=b"a\x00b.jpg"), "Invalid HTTP header"),
        ("/anonymize/", part("image", b"\xff\xd8", filename=b"a\x01b.jpg"), "Invalid HTTP header"),
        ("/anonymize/", part("image", b"\xff\xd8\xff") + b"--xy", "Reading after EOF"),
        ("/anonymize/", b"no parts at all", "Could not find starting boundary"),
        ("/anonymize_video/", part("video", b"\x00\x00\x00\x18ftyp", filename=b"v.mp4") + b"--x", "Reading after EOF"),
        ("/jobs/video", part("video", b"\x00\x00\x00\x18ftyp", filename=b"v.mp4"), "Reading after EOF"),
        ("/set_url", part("url", b"http://127.0.0.1:1/") + b"--", "Reading after EOF"),
    ],
)
async def test_a_broken_multipart_body_is_a_400_with_its_reason(
    api: TestClient[Any, Any], path: str, body: bytes, reason: str
) -> None:
    status, answer = await exchange(api.port, request(path, body))
    assert status == 400
    assert answer["success"] is False
    assert answer["error"].startswith("malformed form body: ")
    assert reason in answer["error"]


async def test_a_multipart_content_type_without_a_boundary_is_a_400(api: TestClient[Any, Any]) -> None:
    status, answer = await exchange(api.port, request("/anonymize/", b"--x\r\n", b"multipart/form-data"))
    expected = "malformed form body: boundary missed for Content-Type: multipart/form-data"
    assert (status, answer["error"]) == (400, expected)


async def test_a_trickling_upload_is_a_408_after_the_body_timeout_and_others_are_served(
    api: TestClient[Any, Any], astronaut_jpeg: bytes
) -> None:
    started = time.monotonic()
    trickle = request("/anonymize/", part("image", astronaut_jpeg))[:300]  # headers and a part of the body, no more
    slow = asyncio.create_task(exchange(api.port, trickle))
    form = FormData()
    form.add_field("image", astronaut_jpeg, filename="a.jpg", content_type="image/jpeg")
    form.add_field("configuration", CONFIGURATION, filename="c.json", content_type="application/json")
    normal = await api.post("/anonymize/", data=form)
    assert normal.status == 200
    assert normal.headers["Content-Type"] == "image/jpeg"
    status, answer = await slow
    assert (status, answer["error"]) == (408, "the request body did not arrive within 2 s")
    assert 1.9 <= time.monotonic() - started < 30

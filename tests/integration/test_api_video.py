"""``POST /anonymize_video/`` over real HTTP: a real photo as a short H.264 clip in, every frame's face hidden."""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from processor.frames import BgrImage
from tests.integration.api_support import api_on_loopback, faces_blackened

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FRAMES = 8
FACE = (slice(95, 125), slice(195, 225))  # rows, columns inside the astronaut's face
FAR = (slice(420, 500), slice(20, 120))  # bottom-left, far from it
CONFIGURATION = faces_blackened()


def clip(image: BgrImage, frames: int) -> bytes:
    """An H.264 MP4 of ``frames`` copies of ``image`` (each one pixel row brighter, so no two are equal)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(8))
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        for index in range(frames):
            pixels = image.copy()
            pixels[index] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def frames_of(data: bytes) -> list[np.ndarray[Any, np.dtype[np.int16]]]:
    with av.open(io.BytesIO(data)) as container:
        return [np.asarray(frame.to_ndarray(format="bgr24"), np.int16) for frame in container.decode(video=0)]


def spool_folders() -> set[str]:
    return {path.name for path in Path(tempfile.gettempdir()).glob("anonymizer-api-*")}


async def no_new_spool_folder(before: set[str], timeout_s: float = 5.0) -> bool:
    """True once no request folder beyond ``before`` is left (the server removes it just after the answer)."""
    for _ in range(int(timeout_s / 0.05)):
        if spool_folders() <= before:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with api_on_loopback(tmp_path, []) as opened:
        yield opened


def form(video: bytes, filename: str = "drive.mp4") -> FormData:
    data = FormData()
    data.add_field("video", io.BytesIO(video), filename=filename, content_type="video/mp4")
    data.add_field("configuration", json.dumps(CONFIGURATION).encode(), filename="user_configuration.json")
    return data


async def test_every_frame_of_the_video_has_its_face_hidden(
    client: TestClient[Any, Any], astronaut_bgr: BgrImage
) -> None:
    before = spool_folders()
    source = clip(astronaut_bgr, FRAMES)
    response = await client.post("/anonymize_video/", data=form(source))
    assert response.status == 200, await response.text()
    assert response.content_type == "video/mp4"
    assert response.headers["X-Anonymizer-Frames"] == str(FRAMES)
    assert response.headers["X-Anonymizer-Keyframes"] == str(FRAMES)  # detect_every=1: every frame
    assert response.headers["X-Anonymizer-Frames-Tracked"] == "0"
    assert json.loads(response.headers["X-Anonymizer-Counts"])["face"] >= FRAMES
    originals, results = frames_of(source), frames_of(await response.read())
    assert len(results) == len(originals) == FRAMES
    for original, result in zip(originals, results, strict=True):
        assert result[FACE].mean() < 25 and original[FACE].mean() > 80  # blackened
        assert np.abs(result[FAR] - original[FAR]).mean() < 8  # the rest as it was (H.264 noise aside)
    assert await no_new_spool_folder(before)  # the request's folder is gone


async def test_not_a_video_is_a_bad_request_and_leaves_nothing_behind(client: TestClient[Any, Any]) -> None:
    before = spool_folders()
    response = await client.post("/anonymize_video", data=form(b"this is no video at all", "notes.mp4"))
    assert response.status == 400
    answer = await response.json()
    assert answer["data"]["kind"] == "video_undecodable" and "not a readable video" in answer["error"]
    assert await no_new_spool_folder(before)

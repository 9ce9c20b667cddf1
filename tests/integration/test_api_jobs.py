"""The video job API over real HTTP: submit a real H.264 clip (a real face photo moving across), poll, fetch the
anonymized video; the bounded queue, expiry, private temp files, shutdown cleanup and the webhook."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from processor.api.app import create_app
from processor.settings import InferenceSettings, JobsSettings, Settings
from tests.conftest import LOOPBACK
from tests.integration.api_support import faces_blackened
from tests.videos import Clip, write_clip

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CLIP = Clip(frames=16)
CONFIGURATION = faces_blackened()

Client = TestClient[Any, Any]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("job-video") / "drive.mp4"
    write_clip(path, CLIP)
    return path.read_bytes()


def frames_of(data: bytes) -> list[np.ndarray[Any, np.dtype[np.int16]]]:
    with av.open(io.BytesIO(data)) as container:
        return [np.asarray(frame.to_ndarray(format="bgr24"), np.int16) for frame in container.decode(video=0)]


def job_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("anonymizer-job-*"))


@pytest.fixture
def make_client(tmp_path: Path) -> Callable[..., Any]:
    registry = tmp_path / "url_configuration.json"
    registry.write_text('{"urls": []}')

    def make(networks: tuple[str, ...] = LOOPBACK, **jobs: Any) -> TestClient[Any, Any]:
        settings = Settings(
            inference=InferenceSettings(url_configuration=registry, allowed_networks=networks),
            jobs=JobsSettings(**jobs),
        )
        return TestClient(TestServer(create_app(settings), host="127.0.0.1"))

    return make


@pytest.fixture
async def client(make_client: Callable[..., Client]) -> AsyncIterator[Client]:
    async with make_client() as opened:
        yield opened


def form(video: bytes, filename: str = "drive.mp4", callback_url: str | None = None) -> FormData:
    data = FormData()
    data.add_field("video", io.BytesIO(video), filename=filename, content_type="video/mp4")
    data.add_field("configuration", json.dumps(CONFIGURATION).encode(), filename="user_configuration.json")
    if callback_url is not None:
        data.add_field("callback_url", callback_url)
    return data


async def wait_until_finished(client: Client, location: str, timeout_s: float = 60.0) -> dict[str, Any]:
    for _ in range(int(timeout_s / 0.1)):
        response = await client.get(location)
        assert response.status == 200, await response.text()
        status: dict[str, Any] = (await response.json())["data"]
        if status["state"] in ("done", "failed"):
            return status
        assert status["state"] in ("queued", "running")
        await asyncio.sleep(0.1)
    raise AssertionError(f"{location} did not finish in {timeout_s} s")


async def test_submit_poll_and_fetch_gives_the_video_with_every_face_hidden(client: Client, video: bytes) -> None:
    submitted = await client.post("/jobs/video", data=form(video))
    assert submitted.status == 202, await submitted.text()
    accepted = (await submitted.json())["data"]
    assert accepted["state"] in ("queued", "running") and len(accepted["id"]) == 32
    assert submitted.headers["Location"] == f"/jobs/{accepted['id']}"

    status = await wait_until_finished(client, submitted.headers["Location"])
    assert status["state"] == "done", status
    assert status["progress"] == {"frames_done": CLIP.frames, "frames_total": CLIP.frames}
    assert status["result"]["frames"] == CLIP.frames and status["result"]["counts"]["face"] >= CLIP.frames
    assert status["error"] is None and status["expires_at"] > status["finished_at"]

    fetched = await client.get(status["result"]["url"])
    assert fetched.status == 200 and fetched.content_type == "video/mp4"
    assert fetched.headers["X-Anonymizer-Frames"] == str(CLIP.frames)
    frames, originals = frames_of(await fetched.read()), frames_of(video)
    assert len(frames) == len(originals) == CLIP.frames
    for index, (frame, original) in enumerate(zip(frames, originals, strict=True)):
        x1, y1, x2, y2 = CLIP.face(index)
        inner = (slice(y1 + (y2 - y1) // 4, y2 - (y2 - y1) // 4), slice(x1 + (x2 - x1) // 4, x2 - (x2 - x1) // 4))
        assert frame[inner].mean() < 30 and original[inner].mean() > 60  # a face, blackened
        far = (slice(-40, None), slice(0, 60))
        assert np.abs(frame[far] - original[far]).mean() < 8  # the rest as it was (H.264 noise aside)


async def test_job_files_are_private_and_gone_after_the_ttl(make_client: Callable[..., Client], video: bytes) -> None:
    before = job_folders()
    async with make_client(result_ttl_s=1.0) as client:
        submitted = await client.post("/jobs/video", data=form(video))
        location = submitted.headers["Location"]
        status = await wait_until_finished(client, location)
        assert status["state"] == "done"
        (folder,) = job_folders() - before
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = list(folder.iterdir())
        assert [path.name for path in files] == ["anonymized.mp4"]  # the upload is deleted once processed
        assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)
        await asyncio.sleep(1.1)
        gone = await client.get(location)
        assert gone.status == 404 and (await gone.json())["data"]["kind"] == "job_not_found"
        assert not folder.exists()


async def test_a_full_queue_refuses_with_429_and_shutdown_deletes_every_job(
    make_client: Callable[..., Client], video: bytes
) -> None:
    before = job_folders()
    async with make_client(max_jobs=1) as client:
        first = await client.post("/jobs/video", data=form(video))
        assert first.status == 202
        second = await client.post("/jobs/video", data=form(video))
        assert second.status == 429
        assert (await second.json())["data"]["kind"] == "jobs_full"
        early = await client.get(first.headers["Location"] + "/result")
        if early.status == 409:  # not done yet (the usual case): said so, with the state
            assert (await early.json())["data"]["kind"] == "job_not_done"
        else:
            assert early.status == 200
        assert len(job_folders() - before) == 1
    assert job_folders() - before == set()  # the server stopped: nothing of its jobs is left


async def test_a_file_that_is_no_video_fails_the_job_with_its_kind(client: Client) -> None:
    submitted = await client.post("/jobs/video", data=form(b"not a video at all", "notes.mp4"))
    assert submitted.status == 202
    status = await wait_until_finished(client, submitted.headers["Location"])
    assert status["state"] == "failed" and status["error"]["kind"] == "video_undecodable"
    result = await client.get(submitted.headers["Location"] + "/result")
    assert result.status == 409 and (await result.json())["data"]["kind"] == "job_failed"


async def test_an_unknown_job_is_404_and_a_bad_configuration_leaves_no_job(client: Client, video: bytes) -> None:
    before = job_folders()
    unknown = await client.get("/jobs/" + "0" * 32)
    assert unknown.status == 404 and (await unknown.json())["data"]["kind"] == "job_not_found"
    data = FormData()
    data.add_field("video", io.BytesIO(video), filename="drive.mp4")
    data.add_field("configuration", '{"sensitive_info": [{"model_name": "centerface"}]}')
    refused = await client.post("/jobs/video", data=data)
    assert refused.status == 422 and refused.headers["X-Anonymizer-Error-Kind"] == "invalid_configuration"
    assert "sensitive_info[0].class_name: Field required" in (await refused.json())["data"]
    assert job_folders() - before == set()


async def test_the_webhook_receives_the_final_status(client: Client, video: bytes) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app, host="127.0.0.1") as hook_server:
        callback = str(hook_server.make_url("/hook"))
        submitted = await client.post("/jobs/video", data=form(video, callback_url=callback))
        assert submitted.status == 202
        assert (await submitted.json())["data"]["webhook"] == {"delivered": None, "status": None, "error": None}
        status = await wait_until_finished(client, submitted.headers["Location"])
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.1)
    assert len(received) == 1 and received[0]["success"] is True
    assert received[0]["data"]["id"] == status["id"] and received[0]["data"]["state"] == "done"
    final = (await (await client.get(submitted.headers["Location"])).json())["data"]
    assert final["webhook"] == {"delivered": True, "status": 204, "error": None}
    assert callback not in json.dumps(final)  # the callback URL (it may hold a token) is never echoed


async def test_a_callback_to_a_private_host_is_refused_by_the_outbound_policy(
    make_client: Callable[..., Client], video: bytes
) -> None:
    before = job_folders()
    async with make_client(networks=()) as client:
        refused = await client.post("/jobs/video", data=form(video, callback_url="http://127.0.0.1:9/hook"))
        assert refused.status == 403, await refused.text()
        assert (await refused.json())["data"]["kind"] == "outbound_refused"
        bad = await client.post("/jobs/video", data=form(video, callback_url="file:///etc/passwd"))
        assert bad.status == 422
    assert job_folders() - before == set()


async def test_the_openapi_document_describes_the_job_endpoints(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    submit = document["paths"]["/jobs/video"]["post"]
    body = submit["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["video", "configuration"] and "callback_url" in body["properties"]
    assert submit["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("JobStatus_")
    assert {"400", "403", "413", "422", "429"} <= set(submit["responses"])
    for path in ("/jobs/{job_id}", "/jobs/{job_id}/result"):
        (parameter,) = document["paths"][path]["get"]["parameters"]
        assert parameter["name"] == "job_id" and parameter["in"] == "path" and parameter["required"] is True
    assert "video/mp4" in document["paths"]["/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
    assert set(document["components"]["schemas"]["JobState"]["enum"]) == {"queued", "running", "done", "failed"}

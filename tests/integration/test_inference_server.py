"""The built-in inference server (``anonymizer infer``) over real HTTP, seen by our own clients and by a raw one."""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from processor.errors import InferenceRejected, InferenceUnavailable
from processor.frames import BgrImage, Frame
from processor.inference.builtin.catalog import CATALOG
from processor.inference.builtin.models import BuiltinModels
from processor.inference.http import InferenceClient
from processor.inference.router import open_router
from processor.inference.server import create_inference_app
from processor.settings import BuiltinSettings, HttpSettings, InferenceSettings, Settings
from schemas.config import InferenceType, SensitiveInfo
from tests.conftest import LOOPBACK, encode_jpeg, encode_png
from tests.inference_stubs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MAX_UPLOAD = 2_000_000


@pytest.fixture(scope="module")
def models() -> BuiltinModels:
    """Loaded once for the module; the server runs them on its own threads."""
    return BuiltinModels()


@pytest.fixture
async def server_url(models: BuiltinModels) -> AsyncIterator[str]:
    settings = Settings(builtin=BuiltinSettings(workers=2), http=HttpSettings(max_upload_bytes=MAX_UPLOAD))
    async with TestServer(create_inference_app(settings, models), host="127.0.0.1") as server:
        yield str(server.make_url("/"))


@pytest.fixture
async def client() -> AsyncIterator[InferenceClient]:
    async with InferenceClient(InferenceSettings(max_attempts=1, allowed_networks=LOOPBACK)) as opened:
        yield opened


@pytest.fixture(scope="module")
def frame(astronaut_bgr: BgrImage) -> Frame:
    return Frame(astronaut_bgr, encode_png(astronaut_bgr), "png")  # lossless: HTTP sees the in-process pixels


async def test_discovery_describes_the_catalog(client: InferenceClient, server_url: str) -> None:
    described = await client.describe(server_url)
    assert {(model.name, model.type, model.labels) for model in described} == {
        (model.name, model.type, model.labels) for model in CATALOG.values()
    }
    assert await client.palette(server_url, "selfie_segmentation") == list(CATALOG["selfie_segmentation"].palette)


async def test_the_astronauts_face_over_http_is_the_in_process_face(
    client: InferenceClient, server_url: str, models: BuiltinModels, frame: Frame
) -> None:
    over_http = await client.detect(server_url, "centerface", frame, "face")
    in_process = models.run_detection("centerface", frame.pixels)
    assert len(over_http) == len(in_process) == 1
    remote, local = over_http[0], in_process[0]
    assert remote.label == "face"
    assert remote.left <= local.left < remote.left + 1 and remote.top <= local.top < remote.top + 1
    assert remote.right - 1 < local.right <= remote.right and remote.bottom - 1 < local.bottom <= remote.bottom
    assert remote.confidence == pytest.approx(local.confidence, abs=0.01)
    centre_x, centre_y = (remote.left + remote.right) / 2, (remote.top + remote.bottom) / 2
    assert 170 <= centre_x <= 230 and 70 <= centre_y <= 150  # where the astronaut's face is


async def test_the_person_mask_over_http_is_the_in_process_mask(
    client: InferenceClient, server_url: str, models: BuiltinModels, frame: Frame
) -> None:
    mask = await client.segment(server_url, "selfie_segmentation", frame, 1)
    expected = models.run_segmentation("selfie_segmentation", frame.pixels) == 1
    assert np.array_equal(mask, expected)
    assert 0.2 < mask.mean() < 0.9  # the astronaut fills much of the portrait, not all of it


async def test_registered_server_serves_entries_through_the_router(
    server_url: str, tmp_path: Path, astronaut_bgr: BgrImage
) -> None:
    settings = InferenceSettings(url_configuration=tmp_path / "url_configuration.json", allowed_networks=LOOPBACK)
    entry = SensitiveInfo(
        model_name="centerface",
        class_name="face",
        anonymization_technique="blurring",
        inference_type=InferenceType.detection,
        anonymization_degree=1.0,
        url=server_url,
    )
    async with open_router(settings) as router:
        await router.registry.remove_all()
        await router.registry.add(server_url)
        found = await router.localize(Frame(astronaut_bgr, encode_jpeg(astronaut_bgr), "jpeg"), entry)
    assert found.source == f"{server_url} centerface"
    assert len(found.boxes) == 1


async def test_unknown_model_is_a_404_the_client_reports(client: InferenceClient, server_url: str) -> None:
    with pytest.raises(InferenceRejected, match=r"models/ghost/labels \(model 'ghost'\): HTTP 404: no built-in model"):
        await client.labels(server_url, "ghost")


async def test_an_upload_over_the_limit_is_a_413_the_client_reports(
    client: InferenceClient, server_url: str, astronaut_bgr: BgrImage
) -> None:
    frame = Frame(astronaut_bgr, b"\xff" * (MAX_UPLOAD + 1), "jpeg")
    with pytest.raises(InferenceRejected, match=r"centerface/predict \(model 'centerface'\): HTTP 413"):
        await client.detect(server_url, "centerface", frame, "face")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("GET", "models/centerface/palette", None, 404, "detection model: it has no palette"),
        ("POST", "models/centerface/inference", b"x", 400, "detection model: POST models/centerface/predict"),
        ("POST", "models/centerface/predict", None, 400, "multipart"),
        ("POST", "models/centerface/predict", b"not an image", 400, ""),
        ("POST", "models/centerface/predict", b"\xff" * (MAX_UPLOAD + 1), 413, "Maximum request body size"),
        ("GET", "nowhere", None, 404, "Not Found"),
    ],
)
async def test_errors_have_honest_codes_in_the_envelope(
    server_url: str, method: str, path: str, body: bytes | None, status: int, error: str
) -> None:
    data: aiohttp.FormData | None = None
    if body is not None:
        data = aiohttp.FormData()
        data.add_field("input_data", io.BytesIO(body), filename="frame.jpg", content_type="image/jpeg")
    async with aiohttp.ClientSession() as session, session.request(method, server_url + path, data=data) as response:
        answer = await response.json()
    assert response.status == status
    assert answer["success"] is False and answer["data"] is None
    assert error in answer["error"]


async def test_load_endpoints_answer_success(server_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("load", "models/plate_cascade/load"):
            async with session.get(server_url + path) as response:
                assert response.status == 200
                assert (await response.json())["success"] is True


async def test_anonymizer_infer_serves_until_sigterm(frame: Frame) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "processor", "infer", "--host", "127.0.0.1", "--port", str(port)],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    # refused until it listens
    patient = InferenceSettings(max_attempts=1, unhealthy_after_failures=1000, allowed_networks=LOOPBACK)
    try:
        async with InferenceClient(patient) as client:
            for _ in range(100):
                try:
                    models = await client.models(url)
                    break
                except InferenceUnavailable:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("anonymizer infer did not answer within 10 s")
            assert models == list(CATALOG)
            assert len(await client.detect(url, "centerface", frame, "face")) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()
    assert f"serving the built-in models on {url}" in stderr.decode()

"""The anonymization API over real HTTP: the original users' script session, bad requests, metrics, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from processor import metrics
from processor.api.app import create_app
from processor.api.routes import ENDPOINTS
from processor.api.statuses import ORIGINAL_CONFIGURATION_ERROR
from processor.inference.builtin.models import BuiltinModels
from processor.inference.server import create_inference_app
from processor.settings import BuiltinSettings, HttpSettings, InferenceSettings, LimitsSettings, Settings
from tests.conftest import LOOPBACK, encode_png
from tests.inference_stubs import InferenceStub, StubModel
from tests.integration.api_support import anonymize_form

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

MAX_UPLOAD = 1_000_000
FACE = (slice(95, 125), slice(185, 215))  # rows, columns well inside the astronaut's face
FAR = (slice(400, 512), slice(400, 512))  # bottom-right corner, far from it

Api = Callable[..., Awaitable[TestClient[Any, Any]]]


def entry(**fields: Any) -> dict[str, Any]:
    """A sensitive_info entry: the astronaut's face, blackened by CenterFace, unless ``fields`` say otherwise."""
    return {
        "model_name": "centerface",
        "class_name": "face",
        "anonymization_technique": "blackening",
        "inference_type": "detection",
        "anonymization_degree": 1.0,
        **fields,
    }


@pytest.fixture(scope="module")
def models() -> BuiltinModels:
    return BuiltinModels()


@pytest.fixture
async def inference_url(models: BuiltinModels) -> AsyncIterator[str]:
    """The real ``anonymizer infer`` application on a free port."""
    async with TestServer(create_inference_app(Settings(), models), host="127.0.0.1") as server:
        yield str(server.make_url("/"))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """Factory: ``await api(urls=[...])`` starts the API (registry file in tmp_path) and returns a client to it."""
    clients: list[TestClient[Any, Any]] = []

    async def start(
        urls: list[str] | None = None,
        max_upload_bytes: int = MAX_UPLOAD,
        max_frames_in_flight: int = 8,
        max_pixels_in_flight: int | None = 200_000_000,
    ) -> TestClient[Any, Any]:
        registry = tmp_path / f"url_configuration_{len(clients)}.json"
        registry.write_text(json.dumps({"urls": urls or []}))
        settings = Settings(
            inference=InferenceSettings(
                url_configuration=registry, max_attempts=1, connect_timeout_s=2, allowed_networks=LOOPBACK
            ),
            http=HttpSettings(max_upload_bytes=max_upload_bytes, max_frames_in_flight=max_frames_in_flight),
            builtin=BuiltinSettings(workers=2),
            limits=LimitsSettings(max_pixels_in_flight=max_pixels_in_flight),
        )
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def json_of(response: Any) -> dict[str, Any]:
    document: dict[str, Any] = await response.json()
    return document


def decode(data: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, np.int16)


async def test_a_users_script_session_hides_the_face_then_loses_the_label(
    api: Api, inference_url: str, astronaut_jpeg: bytes
) -> None:
    client = await api()
    response = await client.post("/set_url", data={"url": inference_url})
    assert response.status == 200, await response.text()
    assert (await json_of(response))["data"] == "url added successfully"

    listed = await json_of(await client.get("/list_urls"))
    assert listed == {"data": {"urls": [inference_url]}, "error": "", "success": True}
    state = (await json_of(await client.get("/urls")))["data"]["urls"]
    assert [(url["url"], url["reachable"], url["builtin"]) for url in state] == [(inference_url, True, False)]

    methods = await json_of(await client.get("/available_methods/"))  # the original's answer: not enveloped
    assert methods["face"]["detection"] == {inference_url: ["centerface"]}
    assert methods["license_plate"]["detection"] == {inference_url: ["plate_cascade", "plate_reader"]}
    assert "person" in methods and {"blurring", "pixelating", "blackening"} <= set(methods["face"]["technique"])

    configuration = {"sensitive_info": [entry(url=inference_url)]}
    response = await client.post("/anonymize/", data=anonymize_form(astronaut_jpeg, configuration))
    assert response.status == 200, await response.text()
    assert response.content_type == "image/jpeg"
    assert json.loads(response.headers["X-Anonymizer-Counts"]) == {"face": 1}
    assert "localize;dur=" in response.headers["Server-Timing"]
    before, after = decode(astronaut_jpeg), decode(await response.read())
    assert after.shape == before.shape
    assert np.abs(after[FACE] - before[FACE]).mean() > 60  # the face is gone (blackened)
    assert after[FACE].max() < 20
    assert np.abs(after[FAR] - before[FAR]).mean() < 3  # the rest is untouched (JPEG noise aside)

    response = await client.post("/remove_url/", data={"url": inference_url})
    assert response.status == 200, await response.text()
    methods = await json_of(await client.get("/available_methods"))
    assert "face" not in methods and methods == {}
    assert (await json_of(await client.get("/list_urls/")))["data"]["urls"] == []

    response = await client.post("/anonymize", data=anonymize_form(astronaut_jpeg, configuration))
    assert response.status == 422  # the URL is no longer registered
    assert inference_url in (await json_of(response))["error"]


async def test_every_path_answers_with_and_without_a_trailing_slash(api: Api) -> None:
    client = await api(urls=["builtin"])
    for endpoint in ENDPOINTS:
        bare = endpoint.path.rstrip("/")
        for path in (bare, bare + "/"):
            await client.post("/set_url", data={"url": "builtin"})  # so that removing it succeeds each time
            if endpoint.method == "GET":
                response = await client.get(path)
                assert response.status == 200, path
            elif endpoint.form_type == "multipart/form-data":  # an empty POST reaches the handler, which says why
                response = await client.post(path)
                assert response.status == 400, path
                assert "multipart" in (await json_of(response))["error"]
            else:
                response = await client.post(path, data={"url": "builtin"})
                assert response.status == 200, path
            body = await json_of(response)
            if endpoint.enveloped:
                assert body["success"] is (response.status == 200)
            else:  # /available_methods/: the capabilities themselves, as the original answered them
                assert "builtin" in body["face"]["detection"]


async def test_remove_all_urls_empties_the_registry(api: Api) -> None:
    client = await api(urls=["builtin"])
    assert (await json_of(await client.get("/list_urls")))["data"]["urls"] == ["builtin"]
    response = await client.post("/remove_all_urls")
    assert response.status == 200 and (await json_of(response))["data"] == "all urls removed successfully"
    assert (await json_of(await client.get("/list_urls")))["data"]["urls"] == []
    assert await json_of(await client.get("/available_methods/")) == {}


async def test_the_configuration_may_be_a_text_field_and_the_format_is_kept(api: Api, astronaut_png: bytes) -> None:
    client = await api()
    form = anonymize_form(astronaut_png, {"sensitive_info": [entry(url="builtin")]}, as_file=False)
    response = await client.post("/anonymize/", data=form)
    assert response.status == 200, await response.text()
    assert response.content_type == "image/png"
    result = decode(await response.read())
    original = decode(astronaut_png)
    changed = np.any(result != original, axis=2)
    assert changed[FACE].all() and not changed[FAR].any()  # PNG is lossless: only the face changed


async def test_an_mpo_is_anonymized_as_its_first_image_and_its_others_are_dropped(api: Api, astronaut_bgr: Any) -> None:
    """A phone's or stereo camera's MPO: a JPEG followed by another image (here the same face, unblurred)."""
    astronaut = Image.fromarray(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB))
    buffer = io.BytesIO()
    astronaut.save(
        buffer, format="MPO", save_all=True, append_images=[astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    )
    mpo = buffer.getvalue()
    assert mpo.count(b"\xff\xd8\xff") == 2 and b"MPF\x00" in mpo
    client = await api()
    form = anonymize_form(mpo, {"sensitive_info": [entry(url="builtin")]})
    response = await client.post("/anonymize/", data=form)
    assert response.status == 200, await response.text()
    assert response.content_type == "image/jpeg"
    body = await response.read()
    assert body.count(b"\xff\xd8\xff") == 1 and b"MPF\x00" not in body, "the second image is not written"
    changed = np.abs(decode(body).astype(int) - astronaut_bgr.astype(int)).max(axis=2) > 40
    assert changed[FACE].mean() > 0.5 and changed[FAR].mean() < 0.05


async def test_missing_fields_are_named(api: Api, astronaut_jpeg: bytes) -> None:
    client = await api()
    form = FormData()
    form.add_field("image", astronaut_jpeg, filename="a.jpg")
    response = await client.post("/anonymize/", data=form)
    assert response.status == 400
    assert "'configuration'" in (await json_of(response))["error"]

    response = await client.post("/set_url", data={})
    assert response.status == 400
    assert "'url'" in (await json_of(response))["error"]


async def test_not_an_image_is_a_bad_request(api: Api) -> None:
    client = await api()
    form = anonymize_form(b"%PDF-1.4 this is not an image", {"sensitive_info": [entry(url="builtin")]})
    response = await client.post("/anonymize/", data=form)
    assert response.status == 400
    answer = await json_of(response)
    assert answer["success"] is False and answer["data"]["kind"] == "image_undecodable"
    assert "not a readable image" in answer["error"]


async def test_an_invalid_configuration_lists_all_three_problems(api: Api, astronaut_jpeg: bytes) -> None:
    client = await api()
    missing_label = entry()
    del missing_label["class_name"]
    configuration = {
        "sensitive_info": [missing_label, entry(anonymization_degree=2), entry(anonymization_technique="swirl")]
    }
    response = await client.post("/anonymize/", data=anonymize_form(astronaut_jpeg, configuration))
    assert response.status == 422
    answer = await json_of(response)
    problems = answer["data"]
    assert answer["error"] == ORIGINAL_CONFIGURATION_ERROR
    assert response.headers["X-Anonymizer-Error-Kind"] == "invalid_configuration" and len(problems) == 3, problems
    assert any(problem.startswith("sensitive_info[0].class_name") for problem in problems)
    assert any(problem.startswith("sensitive_info[1].anonymization_degree") for problem in problems)
    assert any(
        problem.startswith("sensitive_info[2].anonymization_technique") and "swirl" in problem for problem in problems
    )

    response = await client.post("/anonymize/", data=anonymize_form(astronaut_jpeg, "{not json"))
    assert response.status == 422 and "not valid JSON" in (await json_of(response))["data"][0]


async def test_unknown_and_unregistered_urls_are_refused(api: Api, astronaut_jpeg: bytes) -> None:
    client = await api()
    unregistered = "http://127.0.0.1:9/"
    form = anonymize_form(astronaut_jpeg, {"sensitive_info": [entry(url=unregistered)]})
    response = await client.post("/anonymize/", data=form)
    assert response.status == 422
    answer = await json_of(response)
    assert answer["data"]["kind"] == "unregistered_url" and unregistered in answer["error"]

    response = await client.post("/set_url", data={"url": unregistered})  # nothing listens there
    assert response.status == 503 and (await json_of(response))["error"] == "url trying to add is not reachable"
    assert response.headers["X-Anonymizer-Error-Kind"] == "inference_unavailable"
    assert "does not answer" in response.headers["X-Anonymizer-Error-Detail"]
    response = await client.post("/set_url", data={"url": "ftp://example.invalid/"})
    assert response.status == 422 and "http(s)" in response.headers["X-Anonymizer-Error-Detail"]
    assert (await json_of(response))["error"] == "wrong url format. expected format: http://ip:port/"
    response = await client.post("/remove_url", data={"url": unregistered})
    assert response.status == 404 and "not registered" in response.headers["X-Anonymizer-Error-Detail"]
    assert (await json_of(response))["error"] == "url is not present in config file"

    form = anonymize_form(astronaut_jpeg, {"sensitive_info": [entry(url="builtin", class_name="unicorn")]})
    response = await client.post("/anonymize/", data=form)
    answer = await json_of(response)
    assert response.status == 422 and answer["error"] == ORIGINAL_CONFIGURATION_ERROR
    assert response.headers["X-Anonymizer-Error-Kind"] == "unknown_label" and "unicorn" in answer["data"][0]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_huge_upload_is_refused_with_413(api: Api, chunked: bool) -> None:
    client = await api(max_upload_bytes=MAX_UPLOAD)
    huge = np.random.default_rng(1).integers(0, 256, 2 * MAX_UPLOAD, dtype=np.uint8).tobytes()
    form = anonymize_form(huge, {"sensitive_info": [entry()]})
    response = await client.post("/anonymize/", data=form, chunked=chunked)
    assert ("Content-Length" in response.request_info.headers) is not chunked
    assert response.status == 413
    answer = await json_of(response)
    assert "upload limit of 1.0 MB" in answer["error"] and "max_upload_bytes" in answer["error"]


async def test_a_failing_inference_service_gives_503_or_502(api: Api, astronaut_jpeg: bytes) -> None:
    model = StubModel("stubnet", "detection", ["face"], boxes=[])
    async with InferenceStub([model]) as stub:
        client = await api(urls=[stub.url])
        form = lambda: anonymize_form(astronaut_jpeg, {"sensitive_info": [entry(model_name="stubnet")]})  # noqa: E731
        response = await client.post("/anonymize/", data=form())
        assert response.status == 200, await response.text()

        errors = {"url": stub.url, "kind": "inference_unavailable"}
        errors_before = metrics.REGISTRY.get_sample_value("anonymizer_inference_errors_total", errors) or 0.0
        stub.fail_next("status:500")
        response = await client.post("/anonymize/", data=form())
        assert response.status == 503
        answer = await json_of(response)
        assert answer["data"]["kind"] == "inference_unavailable" and stub.url in answer["error"]
        assert metrics.REGISTRY.get_sample_value("anonymizer_inference_errors_total", errors) == errors_before + 1

        stub.fail_next("success_false")
        response = await client.post("/anonymize/", data=form())
        assert response.status == 502
        assert "model crashed on this image" in (await json_of(response))["error"]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    families = text_string_to_metric_families(text)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


async def test_metrics_parse_and_move_when_frames_are_processed(api: Api, astronaut_jpeg: bytes) -> None:
    client = await api()
    before = samples(await (await client.get("/metrics")).text())
    form = anonymize_form(astronaut_jpeg, {"sensitive_info": [entry(url="builtin")]})
    assert (await client.post("/anonymize/", data=form)).status == 200
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    after = samples(await response.text())

    def moved(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after[key] - before.get(key, 0.0)

    assert moved("anonymizer_frames_anonymized_total") == 1
    for stage in ("decode", "localize", "anonymize", "encode", "total"):
        assert moved("anonymizer_stage_duration_seconds_count", stage=stage) == 1
    assert moved("anonymizer_regions_hidden_total", label="face") == 1
    assert moved("anonymizer_inference_duration_seconds_count", url="builtin") == 1
    assert moved("anonymizer_http_requests_total", route="/anonymize", method="POST", status="200") == 1
    assert after[("anonymizer_frames_in_flight", frozenset())] == 0
    names = {name for name, _ in after}
    assert "process_cpu_seconds_total" in names and "anonymizer_build_info" in names
    # the stream's metrics mean nothing in `serve`: it does not export them
    assert not {"anonymizer_events_consumed_total", "anonymizer_paused_partitions"} & names


async def test_fifty_concurrent_requests_all_get_their_own_correct_result(api: Api, astronaut_bgr: Any) -> None:
    client = await api()
    offsets = [(dx, dy) for dx in range(0, 100, 10) for dy in range(0, 50, 10)]
    frames = [np.ascontiguousarray(astronaut_bgr[dy : dy + 384, dx : dx + 384]) for dx, dy in offsets]
    configuration = {"sensitive_info": [entry(url="builtin")]}

    async def anonymize(frame: Any) -> tuple[int, dict[str, int], bytes]:
        response = await client.post("/anonymize/", data=anonymize_form(encode_png(frame), configuration))
        return response.status, json.loads(response.headers.get("X-Anonymizer-Counts", "{}")), await response.read()

    answers = await asyncio.gather(*(anonymize(frame) for frame in frames))
    assert [status for status, _, _ in answers] == [200] * 50
    assert all(counts == {"face": 1} for _, counts, _ in answers)
    assert len({hashlib.sha256(body).hexdigest() for _, _, body in answers}) == 50
    for (dx, dy), frame, (_, _, body) in zip(offsets, frames, answers, strict=True):
        result = decode(body)
        changed = np.any(result != frame, axis=2)
        assert (result[changed] == 0).all()  # what changed is the blackened face, nothing else
        rows, columns = np.nonzero(changed)
        assert 2_000 < rows.size < 40_000, rows.size
        # In the full photo, the same face every time: the hidden ellipse's bottom, left and right edges (its top
        # is cut by the crop's top edge: the face box x2.2 reaches above it).
        bottom, left, right = rows.max() + dy, columns.min() + dx, columns.max() + dx
        assert 246 < bottom < 258 and 118 < left < 136 and 318 < right < 332, (dx, dy, bottom, left, right)


async def test_frames_in_flight_are_bounded_and_the_rest_wait_their_turn(api: Api, astronaut_jpeg: bytes) -> None:
    async with InferenceStub([StubModel("stubnet", "detection", ["face"])], latency_s=0.2) as stub:
        client = await api(urls=[stub.url], max_frames_in_flight=2)
        configuration = {"sensitive_info": [entry(model_name="stubnet")]}
        responses = await asyncio.gather(
            *(client.post("/anonymize/", data=anonymize_form(astronaut_jpeg, configuration)) for _ in range(8))
        )
        assert [response.status for response in responses] == [200] * 8
        assert stub.requests["/models/stubnet/predict"] == 8
        assert stub.in_flight.most == 2


async def test_frames_beyond_the_pixel_budget_wait_their_turn_and_all_complete(api: Api, astronaut_bgr: Any) -> None:
    """A budget of one 1024x1024 frame: six sent at once are anonymized one after another, none refused."""
    client = await api(max_pixels_in_flight=1024 * 1024, max_upload_bytes=10_000_000)
    frame = cv2.resize(astronaut_bgr, (1024, 1024))
    configuration = {"sensitive_info": [entry(url="builtin")]}

    async def exposed(name: str) -> float:
        families = text_string_to_metric_families(await (await client.get("/metrics")).text())
        return next(sample.value for family in families for sample in family.samples if sample.name == name)

    waits = await exposed("anonymizer_pixel_budget_waits_total")
    responses = await asyncio.gather(
        *(client.post("/anonymize/", data=anonymize_form(encode_png(frame), configuration)) for _ in range(6))
    )
    assert [response.status for response in responses] == [200] * 6
    assert all(json.loads(response.headers["X-Anonymizer-Counts"]) == {"face": 1} for response in responses)
    assert await exposed("anonymizer_pixel_budget_waits_total") > waits, "some frames waited for the budget"
    assert await exposed("anonymizer_decoded_pixels_held") == 0, "every frame gave its pixels back"


async def test_health_and_readiness(api: Api) -> None:
    client = await api()
    response = await client.get("/health")
    assert response.status == 200 and (await json_of(response))["data"] == {"alive": True}
    ready = await json_of(await client.get("/ready"))
    assert ready["success"] is True and ready["data"]["ready"] is True
    assert ready["data"]["inference"]["builtin"] is True


async def test_unknown_paths_and_methods_answer_in_the_envelope(api: Api) -> None:
    client = await api()
    response = await client.get("/no/such/thing")
    assert response.status == 404 and "no such endpoint" in (await json_of(response))["error"]
    response = await client.get("/anonymize/")
    assert response.status == 405 and "POST" in (await json_of(response))["error"]

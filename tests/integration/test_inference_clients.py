"""The HTTP inference client against stub services over real sockets: every variant and every fault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest

from processor.errors import InferenceAnswerTooLarge, InferenceRejected, InferenceUnavailable
from processor.frames import BgrImage, Frame
from processor.inference.http import InferenceClient
from processor.settings import InferenceSettings
from schemas.config import InferenceType
from tests.conftest import LOOPBACK, encode_jpeg
from tests.inference_stubs import InferenceStub, InFlight, StubModel, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

FACE_BOX = {
    "ObjectClassName": "face",
    "ObjectClassId": 1,  # 1-based (TensorFlow): index 1 of the labels would be "license_plate"
    "confidence": 87.5,
    "coordinates": {"left": -12, "top": 40, "right": 90, "bottom": 150},  # partly outside the image
}
PLATE_BOX = {
    "ObjectClassName": "license_plate",
    "ObjectClassId": 2,
    "confidence": 99,
    "coordinates": {"left": 300.25, "top": 400.5, "right": 380.75, "bottom": 430.125},  # float (a YOLO variant)
}
DETECTOR = StubModel("faces_and_plates", "detection", ["face", "license_plate"], boxes=[FACE_BOX, PLATE_BOX])
SEGMENTER = StubModel("deeplab", "segmentation", ["background", "person"])


def quick_settings(**overrides: float) -> InferenceSettings:
    values: dict[str, object] = {
        "timeout_s": 2.0,
        "connect_timeout_s": 1.0,
        "max_attempts": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "unhealthy_after_failures": 50,
        "probe_interval_s": 0.3,
        "allowed_networks": LOOPBACK,
    }
    values.update(overrides)
    return InferenceSettings.model_validate(values)


@pytest.fixture
async def client() -> AsyncIterator[InferenceClient]:
    async with InferenceClient(quick_settings()) as opened:
        yield opened


@pytest.fixture(scope="module")
def frame(astronaut_bgr: BgrImage) -> Frame:
    return Frame(astronaut_bgr, encode_jpeg(astronaut_bgr), "jpeg")


async def test_detection_boxes_matched_by_name_with_percent_confidence_and_float_coordinates(
    client: InferenceClient, frame: Frame
) -> None:
    async with InferenceStub([DETECTOR]) as stub:
        faces = await client.detect(stub.url, "faces_and_plates", frame, "face")
        plates = await client.detect(stub.url, "faces_and_plates", frame, "license_plate")
    assert [(box.label, box.left, box.top, box.right, box.bottom) for box in faces] == [("face", -12, 40, 90, 150)]
    assert faces[0].confidence == pytest.approx(0.875)
    assert [(box.left, box.top, box.right, box.bottom) for box in plates] == [(300.25, 400.5, 380.75, 430.125)]
    assert plates[0].confidence == pytest.approx(0.99)
    assert stub.uploads == [("frame.jpg", "image/jpeg", len(frame.encoded))] * 2  # the original bytes, no re-encode


async def test_yolo_labels_null_until_load_which_is_called_once(client: InferenceClient) -> None:
    async with InferenceStub([DETECTOR, SEGMENTER], needs_load=True) as stub:
        described = await client.describe(stub.url)
        again = await client.labels(stub.url, "deeplab")
    assert {(model.name, model.type, model.labels) for model in described} == {
        ("faces_and_plates", InferenceType.detection, ("face", "license_plate")),
        ("deeplab", InferenceType.segmentation, ("background", "person")),
    }
    assert again == ["background", "person"]
    assert stub.requests["/load"] == 1  # four concurrent null answers, one load


async def test_a_fresh_yolov4_container_saying_model_not_found_until_load_is_loaded_and_asked_again(
    client: InferenceClient,
) -> None:
    async with InferenceStub([DETECTOR], needs_load=True, unloaded_as_failure=True) as stub:
        described = await client.describe(stub.url)
    assert [(model.name, model.type, model.labels) for model in described] == [
        ("faces_and_plates", InferenceType.detection, ("face", "license_plate"))
    ]
    assert stub.requests["/load"] == 1


async def test_openvino_models_as_a_dict_and_a_real_404(frame: Frame) -> None:
    async with (
        InferenceClient(quick_settings()) as client,
        InferenceStub([SEGMENTER], models_as_dict=True, http_errors=True) as stub,
    ):
        assert await client.models(stub.url) == ["deeplab"]
        with pytest.raises(InferenceRejected, match=r"nothere/predict \(model 'nothere'\): HTTP 404: model") as error:
            await client.detect(stub.url, "nothere", frame, "face")
    assert stub.url in str(error.value)
    assert stub.requests["/models/nothere/predict"] == 1  # 4xx: no retry


async def test_5xx_is_retried_then_succeeds(client: InferenceClient, frame: Frame) -> None:
    async with InferenceStub([DETECTOR]) as stub:
        stub.fail_next("status:500")
        stub.fail_next("status:503")
        faces = await client.detect(stub.url, "faces_and_plates", frame, "face")
    assert len(faces) == 1
    assert stub.requests["/models/faces_and_plates/predict"] == 3


async def test_a_reset_connection_is_retried_then_succeeds(client: InferenceClient, frame: Frame) -> None:
    async with InferenceStub([DETECTOR]) as stub:
        stub.fail_next("reset", times=2)
        faces = await client.detect(stub.url, "faces_and_plates", frame, "face")
    assert len(faces) == 1
    assert stub.requests["/models/faces_and_plates/predict"] == 3


async def test_5xx_every_time_is_transient_after_max_attempts(client: InferenceClient, frame: Frame) -> None:
    async with InferenceStub([DETECTOR]) as stub:
        stub.fail_next("status:500", times=10)
        with pytest.raises(InferenceUnavailable, match=r"failed 3 time.*HTTP 500") as error:
            await client.detect(stub.url, "faces_and_plates", frame, "face")
    assert "faces_and_plates" in str(error.value)
    assert stub.requests["/models/faces_and_plates/predict"] == 3


async def test_http_200_with_success_false_is_permanent_and_not_retried(client: InferenceClient, frame: Frame) -> None:
    async with InferenceStub([DETECTOR]) as stub:
        stub.fail_next("success_false")
        with pytest.raises(InferenceRejected, match="success: false: model crashed on this image"):
            await client.detect(stub.url, "faces_and_plates", frame, "face")
    assert stub.requests["/models/faces_and_plates/predict"] == 1


async def test_unknown_model_answered_as_200_success_false_names_url_and_model(client: InferenceClient) -> None:
    async with InferenceStub([DETECTOR]) as stub:
        with pytest.raises(InferenceRejected) as error:
            await client.labels(stub.url, "ghost")
    assert f"{stub.url}models/ghost/labels (model 'ghost'): success: false: model ghost not found" == str(error.value)


async def test_malformed_json_is_permanent(client: InferenceClient, frame: Frame) -> None:
    async with InferenceStub([DETECTOR]) as stub:
        stub.fail_next("malformed_json")
        with pytest.raises(InferenceRejected, match="malformed JSON"):
            await client.detect(stub.url, "faces_and_plates", frame, "face")
    assert stub.requests["/models/faces_and_plates/predict"] == 1


@pytest.mark.parametrize("fault", ["huge", "huge_chunked"])
async def test_an_answer_over_the_limit_is_permanent_and_read_no_further(frame: Frame, fault: str) -> None:
    async with (
        InferenceStub([DETECTOR]) as stub,
        InferenceClient(quick_settings(max_answer_bytes=1024 * 1024)) as client,
    ):
        stub.fail_next(fault)
        with pytest.raises(InferenceAnswerTooLarge, match=r"over inference.max_answer_bytes \(1048576 bytes\)"):
            await client.detect(stub.url, "faces_and_plates", frame, "face")
        assert stub.requests["/models/faces_and_plates/predict"] == 1
        assert len(await client.detect(stub.url, "faces_and_plates", frame, "face")) == 1  # the next answer is read


async def test_answer_of_the_wrong_shape_is_permanent_and_says_what_is_wrong(client: InferenceClient) -> None:
    async with InferenceStub([StubModel("odd", "classification", ["cat"])]) as stub:
        with pytest.raises(InferenceRejected, match=r"config.*unexpected answer: data\.type"):
            await client.config(stub.url, "odd")
        assert await client.describe(stub.url) == ()  # the broken model is left out, the call does not fail


async def test_answer_slower_than_the_timeout_is_transient(frame: Frame) -> None:
    settings = quick_settings(timeout_s=0.2, max_attempts=2)
    async with InferenceClient(settings) as client, InferenceStub([DETECTOR]) as stub:
        stub.fail_next("slow", times=2)
        started = time.perf_counter()
        with pytest.raises(InferenceUnavailable, match=r"no answer within 0.2 s"):
            await client.detect(stub.url, "faces_and_plates", frame, "face")
        elapsed = time.perf_counter() - started
    assert stub.requests["/models/faces_and_plates/predict"] == 2
    assert 0.4 <= elapsed < 1.5


async def test_connection_refused_is_transient(client: InferenceClient, frame: Frame) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(InferenceUnavailable, match=r"failed 3 time.*ClientConnectorError"):
        await client.detect(url, "faces_and_plates", frame, "face")


async def test_segmentation_mask_is_the_label_class_at_the_frame_size(client: InferenceClient, frame: Frame) -> None:
    half_size = StubModel("small_map", "segmentation", ["background", "person"], map_scale=0.5)
    async with InferenceStub([SEGMENTER, half_size], models_as_dict=True) as stub:
        person = await client.segment(stub.url, "deeplab", frame, 1)
        background = await client.segment(stub.url, "deeplab", frame, 0)
        resized = await client.segment(stub.url, "small_map", frame, 1)
        palette = await client.palette(stub.url, "deeplab")
    expected = np.zeros((frame.height, frame.width), bool)
    expected[:, : frame.width // 2] = True
    assert person.dtype == np.bool_
    assert np.array_equal(person, expected)
    assert np.array_equal(background, ~expected)
    assert resized.shape == (frame.height, frame.width)
    assert np.mean(resized == expected) > 0.99
    assert palette[:6] == [0, 0, 0, 192, 128, 128]


@pytest.mark.parametrize(
    ("fault", "message"),
    [("malformed_png", "malformed label map: not an image"), ("rgb_png", "PNG mode RGB, expected palette")],
)
async def test_bad_label_maps_are_permanent(client: InferenceClient, frame: Frame, fault: str, message: str) -> None:
    async with InferenceStub([SEGMENTER]) as stub:
        stub.fail_next(fault)
        with pytest.raises(InferenceRejected, match=message):
            await client.segment(stub.url, "deeplab", frame, 1)
    assert stub.requests["/models/deeplab/inference"] == 1


async def test_segmentation_error_as_json_keeps_the_service_message(client: InferenceClient, frame: Frame) -> None:
    async with InferenceStub([SEGMENTER]) as stub:
        stub.fail_next("success_false")
        with pytest.raises(InferenceRejected, match="model crashed on this image"):
            await client.segment(stub.url, "deeplab", frame, 1)


async def test_a_failing_url_is_marked_unhealthy_fails_fast_then_is_probed_again(frame: Frame) -> None:
    settings = quick_settings(max_attempts=1, unhealthy_after_failures=3, probe_interval_s=0.3)
    async with InferenceClient(settings) as client, InferenceStub([DETECTOR]) as stub:
        stub.fail_next("status:502", times=3)
        for _ in range(3):
            with pytest.raises(InferenceUnavailable, match="HTTP 502"):
                await client.detect(stub.url, "faces_and_plates", frame, "face")
        assert not client.is_healthy(stub.url)
        with pytest.raises(InferenceUnavailable, match="marked unhealthy after 3 failures") as error:
            await client.detect(stub.url, "faces_and_plates", frame, "face")
        assert error.value.retry_after_s is not None and 0 < error.value.retry_after_s <= 0.3
        assert stub.requests["/models/faces_and_plates/predict"] == 3  # failed fast: never sent
        await asyncio.sleep(0.35)
        assert len(await client.detect(stub.url, "faces_and_plates", frame, "face")) == 1  # the probe succeeds
        assert client.is_healthy(stub.url)


async def test_in_flight_requests_per_url_never_exceed_the_limit_and_throughput_follows_it(frame: Frame) -> None:
    limit, latency_s, frames = 4, 0.05, 100
    settings = quick_settings(per_url_concurrency=limit)
    async with InferenceClient(settings) as client, InferenceStub([DETECTOR], latency_s=latency_s) as stub:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(client.detect(stub.url, "faces_and_plates", frame, "face") for _ in range(frames))
        )
        elapsed = time.perf_counter() - started
    assert all(len(faces) == 1 for faces in results)
    assert stub.in_flight.most == limit
    bound_s = frames * latency_s / limit  # 1.25 s at limit/latency = 80 frames/s
    assert bound_s <= elapsed < frames * latency_s / 2, f"{elapsed:.2f} s; serial would be {frames * latency_s} s"


async def test_total_concurrency_bounds_requests_across_urls(frame: Frame) -> None:
    shared = InFlight()
    settings = quick_settings(per_url_concurrency=4, total_concurrency=5)
    async with (
        InferenceClient(settings) as client,
        InferenceStub([DETECTOR], latency_s=0.03, in_flight=shared) as first,
        InferenceStub([DETECTOR], latency_s=0.03, in_flight=shared) as second,
    ):
        await asyncio.gather(
            *(client.detect(stub.url, "faces_and_plates", frame, "face") for stub in (first, second) * 20)
        )
    assert shared.most == 5
    assert first.in_flight.most == 5  # the same counter


async def test_client_over_a_shared_session_leaves_it_open() -> None:
    async with aiohttp.ClientSession() as session, InferenceStub([DETECTOR]) as stub:
        async with InferenceClient(quick_settings(), session) as client:
            assert await client.models(stub.url) == ["faces_and_plates"]
        assert not session.closed
        assert await InferenceClient(quick_settings(), session).models(stub.url) == ["faces_and_plates"]

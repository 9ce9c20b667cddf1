"""The router over real stub services: registered URLs only, first registered URL wins, errors that name the entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from processor.errors import UnknownLabel, UnknownModel, UnregisteredUrl
from processor.frames import BgrImage, Frame
from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.inference.http import InferenceClient
from processor.inference.registry import UrlRegistry
from processor.inference.router import InferenceRouter, open_router
from processor.settings import BuiltinSettings, InferenceSettings
from tests.conftest import LOOPBACK, encode_jpeg
from tests.conftest import sensitive_entry as entry
from tests.inference_stubs import InferenceStub, StubModel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

BOX = {
    "ObjectClassName": "face",
    "ObjectClassId": 0,
    "confidence": 90,
    "coordinates": {"left": 10, "top": 20, "right": 30, "bottom": 40},
}
FACES = StubModel("faces", "detection", ["face"], boxes=[BOX])
PERSONS = StubModel("deeplab", "segmentation", ["background", "person"])


@pytest.fixture
def settings(tmp_path: Path) -> InferenceSettings:
    return InferenceSettings(
        url_configuration=tmp_path / "url_configuration.json", max_attempts=1, allowed_networks=LOOPBACK
    )


@pytest.fixture
async def first() -> AsyncIterator[InferenceStub]:
    async with InferenceStub([FACES, PERSONS]) as stub:
        yield stub


@pytest.fixture
async def second() -> AsyncIterator[InferenceStub]:
    async with InferenceStub([FACES]) as stub:
        yield stub


@pytest.fixture(scope="module")
def frame(astronaut_bgr: BgrImage) -> Frame:
    return Frame(astronaut_bgr, encode_jpeg(astronaut_bgr), "jpeg")


def register(settings: InferenceSettings, *urls: str) -> None:
    settings.url_configuration.write_bytes(orjson.dumps({"urls": list(urls)}))


async def test_without_url_the_first_registered_service_is_used(
    settings: InferenceSettings, first: InferenceStub, second: InferenceStub, frame: Frame
) -> None:
    register(settings, second.url, first.url)
    async with open_router(settings) as router:
        found = await router.localize(frame, entry())
    assert found.source == f"{second.url} faces"
    assert [(box.left, box.top, box.right, box.bottom, box.confidence) for box in found.boxes] == [
        (10, 20, 30, 40, 0.9)
    ]
    assert found.timings_ms["inference"] > 0
    assert second.requests["/models/faces/predict"] == 1
    assert first.requests["/models/faces/predict"] == 0


async def test_an_explicit_registered_url_is_used(
    settings: InferenceSettings, first: InferenceStub, second: InferenceStub, frame: Frame
) -> None:
    register(settings, second.url, first.url)
    async with open_router(settings) as router:
        found = await router.localize(frame, entry(url=first.url.rstrip("/")))
    assert found.source == f"{first.url} faces"
    assert (first.requests["/models/faces/predict"], second.requests["/models/faces/predict"]) == (1, 0)


async def test_an_explicit_unregistered_url_is_refused_and_never_called(
    settings: InferenceSettings, first: InferenceStub, second: InferenceStub, frame: Frame
) -> None:
    register(settings, first.url)
    async with open_router(settings) as router:
        with pytest.raises(UnregisteredUrl) as error:
            await router.localize(frame, entry(url=second.url))
    message = str(error.value)
    assert "label 'face'" in message and "model 'faces'" in message
    assert f"url {second.url!r} is not a registered inference URL (registered: {first.url})" in message
    assert sum(second.requests.values()) == 0  # not even discovery: the event cannot make us call a host


async def test_unknown_model_and_label_errors_name_the_entry_and_what_is_available(
    settings: InferenceSettings, first: InferenceStub, frame: Frame
) -> None:
    register(settings, first.url)
    async with open_router(settings) as router:
        with pytest.raises(UnknownModel) as model_error:
            await router.localize(frame, entry(model="plates", label="license_plate"))
        with pytest.raises(UnknownLabel) as label_error:
            await router.localize(frame, entry(label="license_plate"))
        with pytest.raises(UnknownModel) as type_error:
            await router.localize(frame, entry(kind="segmentation"))
    assert str(model_error.value) == (
        "sensitive_info entry (label 'license_plate', model 'plates', detection): no registered service serves "
        f"model 'plates'; available: {first.url}: faces, deeplab"
    )
    assert str(label_error.value) == (
        "sensitive_info entry (label 'license_plate', model 'faces', detection): the model has no label "
        f"'license_plate' ({first.url} knows only face)"
    )
    assert f"{first.url} serves it as a detection model" in str(type_error.value)


async def test_segmentation_goes_through_the_label_index(
    settings: InferenceSettings, first: InferenceStub, frame: Frame
) -> None:
    register(settings, first.url)
    async with open_router(settings) as router:
        person = await router.localize(frame, entry(model="deeplab", label="person", kind="segmentation"))
        background = await router.localize(frame, entry(model="deeplab", label="background", kind="segmentation"))
    assert person.mask is not None and background.mask is not None
    assert person.boxes == ()
    assert person.mask[:, : frame.width // 2].all() and not person.mask[:, frame.width // 2 :].any()
    assert np.array_equal(background.mask, ~person.mask)


async def test_builtin_without_in_process_models_is_a_clear_error(settings: InferenceSettings, frame: Frame) -> None:
    async with InferenceClient(settings) as client, UrlRegistry(settings, client) as registry:
        router = InferenceRouter(registry, client, builtin=None)
        assert router.route(entry("centerface", url="builtin")).url == "builtin"
        with pytest.raises(UnknownModel, match="built-in models are not available in this process"):
            await router.localize(frame, entry("centerface", url="builtin"))


async def test_builtin_entries_go_to_the_in_process_detectors(settings: InferenceSettings, frame: Frame) -> None:
    async with (
        BuiltinLocalizer(BuiltinSettings(workers=1)) as builtin,
        open_router(settings, builtin=builtin) as router,
    ):
        assert router.registry.urls == ("builtin",)  # no file: the embedded default
        found = await router.localize(frame, entry("centerface"))
    assert found.source == "builtin/centerface"
    assert len(found.boxes) == 1

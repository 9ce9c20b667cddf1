"""The bundled detectors on real public-domain photos and frames composed from them, and their localizer."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import pytest

from processor.errors import InvalidConfiguration, UnknownLabel, UnknownModel
from processor.frames import BgrImage, Box, Frame
from processor.inference.builtin.catalog import BUILTIN_URL, CATALOG, MODELS_DIR
from processor.inference.builtin.faces import FaceDetector, to_blob
from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.inference.builtin.models import BuiltinModels, _Lazy
from processor.inference.builtin.persons import PersonSegmenter, component_boxes
from processor.inference.builtin.plates import PlateDetector
from processor.settings import BuiltinSettings
from schemas.config import SensitiveInfo
from tests.frames import (
    ASTRONAUT_FACE,
    GRACE_HOPPER_FACE,
    astronaut,
    compose_crowd_frame,
    compose_plate_frame,
    grace_hopper,
)

Rect = tuple[float, float, float, float]


def intersection(a: Rect, b: Rect) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def iou(a: Rect, b: Rect) -> float:
    inter = intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def rect(box: Box) -> Rect:
    return box.left, box.top, box.right, box.bottom


def unmatched(truth: list[Rect], boxes: list[Box], min_iou: float) -> list[Rect]:
    return [t for t in truth if not any(iou(t, rect(b)) >= min_iou for b in boxes)]


def noise(height: int, width: int) -> BgrImage:
    return np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)


def entry(model: str, label: str, inference_type: str = "detection") -> SensitiveInfo:
    return SensitiveInfo.model_validate(
        {
            "model_name": model,
            "class_name": label,
            "anonymization_technique": "blurring",
            "inference_type": inference_type,
            "anonymization_degree": 1.0,
        }
    )


def frame_of(pixels: BgrImage) -> Frame:
    return Frame(pixels=pixels, encoded=b"", format="png")


@pytest.fixture(scope="module")
def faces() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def plates() -> PlateDetector:
    return PlateDetector()


@pytest.fixture(scope="module")
def persons() -> PersonSegmenter:
    return PersonSegmenter()


@pytest.fixture
async def localizer() -> AsyncIterator[BuiltinLocalizer]:
    async with BuiltinLocalizer(BuiltinSettings(workers=2)) as opened:
        yield opened


# --- model files ---------------------------------------------------------------------------------------------


def test_committed_model_files_match_their_sha256sums() -> None:
    listed = [line.split() for line in (MODELS_DIR / "SHA256SUMS").read_text().splitlines() if line[:1] != "#"]
    assert {name for _, name in listed} == {
        "centerface.onnx",
        "ch_PP-OCRv4_det_infer.onnx",
        "ch_PP-OCRv4_rec_infer.onnx",
        "nanodet.onnx",
        "selfie_segmentation.tflite",
    }
    for digest, name in listed:
        assert hashlib.sha256((MODELS_DIR / name).read_bytes()).hexdigest() == digest, name
    for licence in ("LICENSE.centerface", "LICENSE.mediapipe", "LICENSE.nanodet", "LICENSE.ppocr"):
        assert (MODELS_DIR / licence).stat().st_size > 1000
    nanodet_licence = (MODELS_DIR / "LICENSE.nanodet").read_text()
    assert "Apache License" in nanodet_licence and "RangiLyu/nanodet" in nanodet_licence
    assert "CONVERTED" in nanodet_licence and "tf2onnx" in nanodet_licence


# --- faces ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("image", "face"), [(astronaut, ASTRONAUT_FACE), (grace_hopper, GRACE_HOPPER_FACE)])
def test_the_face_of_a_portrait_is_found_where_it_is(
    faces: FaceDetector, image: Callable[[], BgrImage], face: Rect
) -> None:
    boxes = faces.detect(image())
    assert len(boxes) == 1
    (box,) = boxes
    assert box.label == "face"
    assert 0.5 < box.confidence <= 1.0
    assert np.allclose(rect(box), face, atol=12), rect(box)


@pytest.mark.parametrize("image", [np.zeros((1080, 1920, 3), np.uint8), noise(720, 1280)], ids=["blank", "noise"])
def test_no_face_is_found_where_there_is_none(faces: FaceDetector, image: BgrImage) -> None:
    assert faces.detect(image) == []


def test_every_face_of_a_1080p_crowd_is_found_in_frame_coordinates(faces: FaceDetector) -> None:
    heights = [36, 44, 56, 70, 90, 120, 160, 210, 280]
    frame, truth = compose_crowd_frame(heights * 2)
    boxes = faces.detect(frame)
    assert unmatched(truth, boxes, min_iou=0.4) == []
    assert len(boxes) == len(truth)  # one box per face, none elsewhere


def test_a_smaller_max_side_loses_small_faces_and_a_larger_one_finds_them() -> None:
    frame, truth = compose_crowd_frame([28] * 6)  # face height in px of the 1080p frame
    assert len(unmatched(truth, FaceDetector(max_side=960).detect(frame), min_iou=0.3)) == 6
    assert unmatched(truth, FaceDetector(max_side=1920).detect(frame), min_iou=0.3) == []


@pytest.mark.parametrize(
    ("height", "width", "max_side", "expected_shape", "expected_scale"),
    [
        (1080, 1920, 1280, (736, 1280), 1280 / 1920),
        (1920, 1080, 960, (960, 544), 0.5),
        (100, 70, 1280, (128, 96), 1.0),  # small images are padded, not enlarged
    ],
)
def test_the_network_input_is_shrunk_to_max_side_and_padded_to_multiples_of_32(
    height: int, width: int, max_side: int, expected_shape: tuple[int, int], expected_scale: float
) -> None:
    image = np.full((height, width, 3), (10, 20, 30), np.uint8)
    blob, scale = to_blob(image, max_side)
    assert blob.shape == (1, 3, *expected_shape)
    assert scale == pytest.approx(expected_scale)
    assert blob[0, :, 0, 0].tolist() == [30, 20, 10]  # RGB, not normalised
    assert blob[0, :, -1, -1].tolist() == [0, 0, 0]  # zero padding at the bottom right


# --- plates --------------------------------------------------------------------------------------------------


def covered(plate: Rect, boxes: list[Box]) -> float:
    """The largest fraction of ``plate`` that one box covers."""
    area = (plate[2] - plate[0]) * (plate[3] - plate[1])
    return max((intersection(plate, rect(b)) / area for b in boxes), default=0.0)


def test_rendered_plates_of_normal_size_are_found_on_the_downscaled_image(plates: PlateDetector) -> None:
    frame, truth = compose_plate_frame([130, 180, 260, 360])
    boxes = plates.detect(frame)
    assert all(box.label == "license_plate" for box in boxes)
    assert [covered(plate, boxes) > 0.9 for plate in truth] == [True] * len(truth)


def test_plates_smaller_than_the_window_after_downscaling_are_lost() -> None:
    frame, truth = compose_plate_frame([130])  # 32 px wide at 0.25: below the cascade's 60 px window
    assert covered(truth[0], PlateDetector(downscale=0.5).detect(frame)) > 0.9
    assert PlateDetector(downscale=0.25).detect(frame) == []


def test_no_plate_is_found_on_a_blank_image(plates: PlateDetector) -> None:
    assert plates.detect(np.zeros((1080, 1920, 3), np.uint8)) == []


def test_plate_downscale_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="downscale"):
        PlateDetector(downscale=1.5)


# --- persons -------------------------------------------------------------------------------------------------


def test_the_person_mask_covers_the_astronaut_and_little_of_the_background(persons: PersonSegmenter) -> None:
    mask = persons.segment(astronaut())
    assert mask.shape == (512, 512)
    assert mask.dtype == np.bool_
    assert mask[58:178, 180:270].mean() > 0.9  # face
    assert mask[300:480, 150:330].mean() > 0.95  # suit
    assert mask[0:150, 0:120].mean() < 0.05  # flag
    assert mask[0:150, 330:512].mean() < 0.05  # shuttle and wall


def test_the_person_mask_has_the_size_of_a_non_square_image(persons: PersonSegmenter) -> None:
    mask = persons.segment(grace_hopper())
    assert mask.shape == (600, 512)
    assert mask[131:336, 175:357].mean() > 0.9


def test_no_person_on_a_blank_image(persons: PersonSegmenter) -> None:
    assert not persons.segment(np.zeros((480, 640, 3), np.uint8)).any()


def test_component_boxes_bound_each_connected_region_largest_first() -> None:
    mask = np.zeros((100, 200), np.bool_)
    mask[10:20, 30:40] = True
    mask[50:90, 100:180] = True
    boxes = component_boxes(mask, "person")
    assert [rect(b) for b in boxes] == [(100, 50, 180, 90), (30, 10, 40, 20)]
    assert component_boxes(np.zeros((5, 5), np.bool_), "person") == []


# --- thread safety -------------------------------------------------------------------------------------------


def run_in_threads(call: Callable[[BgrImage], Any], images: list[BgrImage]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(call, images))


def test_detectors_give_the_same_answers_from_many_threads_at_once(
    faces: FaceDetector, plates: PlateDetector, persons: PersonSegmenter
) -> None:
    plate_frame, _ = compose_plate_frame([180, 260], size=(960, 540))
    images = [astronaut(), grace_hopper(), plate_frame] * 3
    for call in (faces.detect, plates.detect):
        assert run_in_threads(call, images) == [call(image) for image in images]
    concurrent_masks = run_in_threads(persons.segment, images)
    assert all(np.array_equal(a, persons.segment(b)) for a, b in zip(concurrent_masks, images, strict=True))


def test_a_lazy_value_is_built_once_when_many_threads_ask_at_once() -> None:
    calls: list[int] = []

    def load() -> object:
        calls.append(threading.get_ident())
        time.sleep(0.05)
        return object()

    lazy = _Lazy(load)
    values = run_in_threads(lambda _: lazy.get(), [np.zeros(1, np.uint8)] * 8)
    assert len(calls) == 1
    assert all(value is values[0] for value in values)


# --- catalog and localizer -----------------------------------------------------------------------------------


def test_the_catalog_lists_five_models_in_the_contract_shape() -> None:
    assert BUILTIN_URL == "builtin"
    assert {name: (m.type.value, m.labels) for name, m in BuiltinModels().catalog().items()} == {
        "centerface": ("detection", ("face",)),
        "plate_cascade": ("detection", ("license_plate",)),
        "plate_reader": ("detection", ("license_plate",)),
        "nanodet": ("detection", ("person", "vehicle")),
        "selfie_segmentation": ("segmentation", ("background", "person")),
    }
    selfie = CATALOG["selfie_segmentation"]
    assert selfie.config() == {"type": "segmentation"}
    assert len(selfie.palette) == 3 * len(selfie.labels)
    assert all(0 <= value <= 255 for value in selfie.palette)


async def test_face_entries_give_face_boxes_and_no_mask(localizer: BuiltinLocalizer) -> None:
    found = await localizer.localize(frame_of(astronaut()), entry("centerface", "face"))
    assert found.label == "face"
    assert found.mask is None
    assert found.source == "builtin/centerface"
    assert [iou(rect(b), ASTRONAUT_FACE) > 0.7 for b in found.boxes] == [True]
    assert found.timings_ms["inference"] > 0


async def test_plate_entries_give_plate_boxes(localizer: BuiltinLocalizer) -> None:
    frame, truth = compose_plate_frame([260])
    found = await localizer.localize(frame_of(frame), entry("plate_cascade", "license_plate"))
    assert found.mask is None
    assert covered(truth[0], list(found.boxes)) > 0.9


async def test_person_segmentation_gives_the_mask_and_its_component_boxes(localizer: BuiltinLocalizer) -> None:
    image = astronaut()
    found = await localizer.localize(frame_of(image), entry("selfie_segmentation", "person", "segmentation"))
    assert found.mask is not None
    assert np.array_equal(found.mask, localizer.models.run_segmentation("selfie_segmentation", image) == 1)
    assert found.boxes
    assert found.boxes == tuple(component_boxes(found.mask, "person"))


async def test_background_segmentation_gives_the_complement_of_the_persons(localizer: BuiltinLocalizer) -> None:
    image = astronaut()
    person = await localizer.localize(frame_of(image), entry("selfie_segmentation", "person", "segmentation"))
    background = await localizer.localize(frame_of(image), entry("selfie_segmentation", "background", "segmentation"))
    assert person.mask is not None
    assert background.mask is not None
    assert np.array_equal(background.mask, ~person.mask)
    assert all(box.label == "background" for box in background.boxes)


async def test_person_detection_gives_boxes_of_the_mask_components_only(localizer: BuiltinLocalizer) -> None:
    image = astronaut()
    found = await localizer.localize(frame_of(image), entry("selfie_segmentation", "person"))
    assert found.mask is None
    assert [rect(b) for b in found.boxes] == [
        rect(b) for b in localizer.models.run_detection("selfie_segmentation", image)
    ]
    largest = found.boxes[0]
    assert largest.label == "person"
    assert iou(rect(largest), (0, 0, 512, 512)) > 0.6  # the astronaut fills most of the picture


async def test_nanodet_entries_give_the_boxes_of_their_label_only(localizer: BuiltinLocalizer) -> None:
    image = astronaut()
    person = await localizer.localize(frame_of(image), entry("nanodet", "person"))
    vehicle = await localizer.localize(frame_of(image), entry("nanodet", "vehicle"))
    assert person.mask is None
    assert person.source == "builtin/nanodet"
    assert [box.label for box in person.boxes] == ["person"]
    assert iou(rect(person.boxes[0]), (0, 0, 512, 512)) > 0.6  # the astronaut fills most of the picture
    assert vehicle.boxes == ()


def test_nanodet_tiling_follows_the_setting() -> None:
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    frame[600:677, 1300:1377] = cv2.resize(astronaut(), (77, 77), interpolation=cv2.INTER_AREA)  # far away
    tiled = BuiltinModels(BuiltinSettings()).run_detection("nanodet", frame)
    whole = BuiltinModels(BuiltinSettings(nanodet_tiling=False)).run_detection("nanodet", frame)
    assert [box.label for box in tiled] == ["person"]
    assert whole == []


async def test_an_unknown_model_is_refused_naming_the_models_there_are(localizer: BuiltinLocalizer) -> None:
    with pytest.raises(UnknownModel) as raised:
        await localizer.localize(frame_of(astronaut()), entry("yolo", "face"))
    message = str(raised.value)
    assert "'yolo'" in message
    assert all(name in message for name in ("centerface", "plate_cascade", "nanodet", "selfie_segmentation"))


async def test_an_unknown_label_is_refused_naming_model_label_and_labels(localizer: BuiltinLocalizer) -> None:
    with pytest.raises(UnknownLabel) as raised:
        await localizer.localize(frame_of(astronaut()), entry("selfie_segmentation", "car", "segmentation"))
    message = str(raised.value)
    assert "'selfie_segmentation'" in message
    assert "'car'" in message
    assert "background, person" in message


async def test_segmentation_of_a_detection_model_is_refused(localizer: BuiltinLocalizer) -> None:
    with pytest.raises(InvalidConfiguration, match="'centerface' is a detection model"):
        await localizer.localize(frame_of(astronaut()), entry("centerface", "face", "segmentation"))


async def test_localize_outside_the_context_manager_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await BuiltinLocalizer().localize(frame_of(astronaut()), entry("centerface", "face"))


async def test_concurrent_localize_calls_give_the_same_results_as_sequential_ones(
    localizer: BuiltinLocalizer,
) -> None:
    plate_frame, _ = compose_plate_frame([180, 260], size=(960, 540))
    images = [astronaut(), grace_hopper(), plate_frame]
    entries = [
        entry("centerface", "face"),
        entry("plate_cascade", "license_plate"),
        entry("selfie_segmentation", "person", "segmentation"),
        entry("selfie_segmentation", "person"),
        entry("nanodet", "person"),
    ]
    jobs = [(image, e) for image in images for e in entries] * 2
    await localizer.warm_up()
    sequential = [await localizer.localize(frame_of(image), e) for image, e in jobs]
    concurrent = await asyncio.gather(*(localizer.localize(frame_of(image), e) for image, e in jobs))
    for one, other in zip(sequential, concurrent, strict=True):
        assert (one.label, one.boxes, one.source) == (other.label, other.boxes, other.source)
        assert (one.mask is None and other.mask is None) or np.array_equal(one.mask, other.mask)

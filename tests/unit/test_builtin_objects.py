"""NanoDet persons and vehicles: the decoding on constructed arrays, the tiles and their merge, and the detector
on real photos (skimage's astronaut, NASA, public domain; skimage's Middlebury motorcycle) and frames made of them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import skimage.data

from processor.frames import BgrImage, Box
from processor.inference.builtin.nanodet_decoding import (
    INPUT_SIDE,
    MEAN_BGR,
    REG_MAX,
    STD_BGR,
    decode,
    decode_level,
    distances,
    to_blob,
)
from processor.inference.builtin.objects import ObjectDetector
from processor.inference.builtin.tiling import containment_merge, tile_windows
from tests.frames import ASTRONAUT_FACE, astronaut

Rect = tuple[float, float, float, float]

ASTRONAUT_PERSON: Rect = (20, 12, 365, 512)  # by hand: hair to the bottom edge, shoulder to shoulder
MOTORCYCLE: Rect = (92, 70, 685, 452)  # by hand in motorcycle_left.png: rear light to front tyre, mirror to tyres
ALL_CLASSES = np.arange(80, dtype=np.int64)


def rect(box: Box) -> Rect:
    return box.left, box.top, box.right, box.bottom


def iou(a: Rect, b: Rect) -> float:
    inter = covered(a, b) * area(a)
    return inter / (area(a) + area(b) - inter)


def area(a: Rect) -> float:
    return (a[2] - a[0]) * (a[3] - a[1])


def covered(inner: Rect, outer: Rect) -> float:
    """The fraction of ``inner`` inside ``outer``."""
    width = min(inner[2], outer[2]) - max(inner[0], outer[0])
    height = min(inner[3], outer[3]) - max(inner[1], outer[1])
    return max(0.0, width) * max(0.0, height) / area(inner)


def motorcycle() -> BgrImage:
    image = cv2.imread(f"{skimage.data.__path__[0]}/motorcycle_left.png")
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def far_astronaut(factor: float) -> tuple[BgrImage, Rect]:
    """The astronaut shrunk by ``factor`` on a grey 1920x1080 frame, and where her person box is then."""
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    small = cv2.resize(astronaut(), None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    x, y = 1300, 600
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small
    left, top, right, bottom = ASTRONAUT_PERSON
    return frame, (x + left * factor, y + top * factor, x + right * factor, y + bottom * factor)


@pytest.fixture(scope="module")
def tiled() -> ObjectDetector:
    return ObjectDetector()


@pytest.fixture(scope="module")
def whole_frame() -> ObjectDetector:
    return ObjectDetector(tile=None)


# --- input ---------------------------------------------------------------------------------------------------


def test_the_input_is_letterboxed_bgr_normalised_as_nanodet_was_trained() -> None:
    image = np.full((1080, 1920, 3), (10, 20, 30), np.uint8)
    blob, scale = to_blob(image)
    assert blob.shape == (1, 3, INPUT_SIDE, INPUT_SIDE)
    assert scale == pytest.approx(INPUT_SIDE / 1920)
    expected = [(value - mean) / std for value, mean, std in zip((10, 20, 30), MEAN_BGR, STD_BGR, strict=True)]
    assert blob[0, :, 0, 0] == pytest.approx(expected)  # channel 0 is blue
    assert blob[0, :, 233, 415] == pytest.approx(expected)  # the image: 1080 * 416/1920 = 234 rows
    black = [-mean / std for mean, std in zip(MEAN_BGR, STD_BGR, strict=True)]
    assert blob[0, :, 234, 0] == pytest.approx(black)  # below it, black padding: the aspect ratio is kept


def test_a_small_image_is_enlarged_to_the_input_side() -> None:
    blob, scale = to_blob(np.zeros((100, 50, 3), np.uint8))
    assert scale == pytest.approx(INPUT_SIDE / 100)
    assert blob.shape == (1, 3, INPUT_SIDE, INPUT_SIDE)


# --- decoding ------------------------------------------------------------------------------------------------


def peaked(bins: list[int]) -> np.ndarray:
    """Box logits (1 x 44) whose four side distributions peak sharply at ``bins``."""
    logits = np.full((4, REG_MAX + 1), -30.0, np.float32)
    logits[range(4), bins] = 30.0
    return logits.reshape(1, -1)


def test_a_side_distance_is_the_expectation_of_its_bin_softmax() -> None:
    assert np.allclose(distances(peaked([0, 3, 7, 10])), [[0, 3, 7, 10]], atol=1e-5)
    assert np.allclose(distances(np.zeros((1, 44), np.float32)), [[5, 5, 5, 5]])  # uniform: the mean
    two = np.full((4, REG_MAX + 1), -30.0, np.float32)
    two[:, [2, 4]] = 0.0  # two equal bins: halfway
    assert np.allclose(distances(two.reshape(1, -1)), [[3, 3, 3, 3]], atol=1e-5)


def test_a_cell_above_threshold_becomes_a_box_around_its_centre() -> None:
    stride, columns = 8, INPUT_SIDE // 8
    scores = np.zeros((columns * columns, 80), np.float32)
    box_logits = np.zeros((columns * columns, 44), np.float32)
    cell = 2 * columns + 3  # row 2, column 3: centre (28, 20)
    scores[cell, 0] = 0.9
    box_logits[cell] = peaked([1, 2, 3, 4])
    found = decode_level(scores, box_logits, stride, ALL_CLASSES, threshold=0.35)
    assert np.allclose(found.boxes, [[28 - 8, 20 - 16, 28 + 24, 20 + 32]], atol=1e-3)
    assert found.scores.tolist() == pytest.approx([0.9])
    assert found.classes.tolist() == [0]


def test_only_asked_classes_above_threshold_are_kept_each_pair_on_its_own() -> None:
    columns = INPUT_SIDE // 32
    scores = np.zeros((columns * columns, 80), np.float32)
    scores[0, [0, 1]] = 0.8  # a cyclist: person and bicycle in one cell
    scores[1, 15] = 0.9  # a cat: not asked for
    scores[2, 0] = 0.3  # below threshold
    found = decode_level(scores, np.zeros((columns * columns, 44), np.float32), 32, np.array([0, 1]), 0.35)
    assert sorted(found.classes.tolist()) == [0, 1]
    assert np.allclose(found.boxes, [[16 - 160, 16 - 160, 16 + 160, 16 + 160]] * 2)


def test_every_stride_is_decoded_on_its_own_grid() -> None:
    outputs = {}
    for stride in (8, 16, 32):
        cells = (INPUT_SIDE // stride) ** 2
        scores = np.zeros((cells, 80), np.float32)
        scores[-1, 2] = 0.5  # the bottom-right cell of each grid
        outputs[stride] = (scores, np.tile(peaked([0, 0, 0, 0]), (cells, 1)))
    found = decode(outputs, ALL_CLASSES, 0.35)
    centres = {stride: INPUT_SIDE - stride / 2 for stride in (8, 16, 32)}
    assert found.boxes[:, 0].tolist() == pytest.approx(list(centres.values()), abs=1e-3)
    assert found.classes.tolist() == [2, 2, 2]
    assert decode(outputs, ALL_CLASSES, 0.6).boxes.shape == (0, 4)


# --- tiles and their merge -----------------------------------------------------------------------------------


def test_1080p_gets_eight_tiles_overlapping_by_at_least_a_fifth() -> None:
    windows = tile_windows(1920, 1080, 640)
    assert sorted({x for x, _, _, _ in windows}) == [0, 427, 853, 1280]
    assert sorted({y for _, y, _, _ in windows}) == [0, 440]
    assert {(w, h) for _, _, w, h in windows} == {(640, 640)}
    assert 427 <= 640 * 0.8 and 440 <= 640 * 0.8


def test_no_tiles_when_the_frame_fits_one_and_one_row_when_it_is_low() -> None:
    assert tile_windows(640, 480, 640) == []
    assert tile_windows(1000, 300, 640) == [(0, 0, 640, 300), (360, 0, 640, 300)]


def test_a_fragment_inside_a_larger_box_of_its_label_is_merged_into_it() -> None:
    person = Box(100, 100, 300, 500, "person", 0.6)
    fragment = Box(250, 100, 320, 300, "person", 0.9)  # 5/7 of it inside the person
    vehicle = Box(120, 120, 200, 200, "vehicle", 0.8)  # inside too, but another label
    apart = Box(600, 100, 700, 300, "person", 0.7)
    merged = containment_merge([fragment, vehicle, person, apart])
    assert merged == [Box(100, 100, 320, 500, "person", 0.9), apart, vehicle]  # largest first


def test_boxes_that_only_overlap_are_not_merged() -> None:
    a = Box(0, 0, 100, 100, "person", 0.5)
    b = Box(50, 0, 150, 100, "person", 0.5)  # half inside
    assert containment_merge([a, b]) == [a, b]


# --- the detector on real photos -----------------------------------------------------------------------------


def test_the_astronaut_is_one_person_box_where_she_is(tiled: ObjectDetector) -> None:
    boxes = tiled.detect(astronaut())
    assert [box.label for box in boxes] == ["person"]
    assert iou(rect(boxes[0]), ASTRONAUT_PERSON) > 0.85
    assert 0.35 <= boxes[0].confidence <= 1.0
    left, top, right, bottom = ASTRONAUT_FACE
    assert boxes[0].left <= left and boxes[0].top <= top and boxes[0].right >= right and boxes[0].bottom >= bottom


def test_a_motorcycle_is_a_vehicle(tiled: ObjectDetector) -> None:
    boxes = tiled.detect(motorcycle())
    assert [box.label for box in boxes] == ["vehicle"]
    assert iou(rect(boxes[0]), MOTORCYCLE) > 0.8


@pytest.mark.parametrize("factor", [0.15, 0.1])
def test_a_far_person_in_1080p_is_found_with_tiles_and_lost_without(
    tiled: ObjectDetector, whole_frame: ObjectDetector, factor: float
) -> None:
    frame, truth = far_astronaut(factor)  # 77 / 51 px tall
    assert not any(iou(rect(box), truth) > 0.1 for box in whole_frame.detect(frame))
    boxes = tiled.detect(frame)
    assert [box.label for box in boxes] == ["person"]
    assert covered(truth, rect(boxes[0])) > 0.9
    assert area(rect(boxes[0])) < 2 * area(truth)  # at this size NanoDet's box takes in the helmet she holds


def test_a_near_person_cut_by_tile_borders_stays_one_box(tiled: ObjectDetector) -> None:
    frame = cv2.resize(astronaut(), (1080, 1080))  # crosses every tile border
    canvas = np.full((1080, 1920, 3), 128, np.uint8)
    canvas[:, 420:1500] = frame
    scale = 1080 / 512
    left, top, right, bottom = ASTRONAUT_PERSON
    truth = (420 + left * scale, top * scale, 420 + right * scale, bottom * scale)
    persons = [rect(box) for box in tiled.detect(canvas) if box.label == "person"]
    assert iou(persons[0], truth) > 0.8
    # the tiles' pieces of her (ten boxes after NMS) are merged; the tiles' false persons on the helmet remain
    assert [covered(other, truth) < 0.5 for other in persons[1:]] == [True] * (len(persons) - 1)


@pytest.mark.parametrize("image", [np.zeros((1080, 1920, 3), np.uint8), np.full((720, 1280, 3), 128, np.uint8)])
def test_nothing_is_found_on_a_plain_frame(tiled: ObjectDetector, image: BgrImage) -> None:
    assert tiled.detect(image) == []


@pytest.mark.parametrize("shape", [(1, 1), (1, 1000), (1000, 1), (3, 1000)])
def test_images_of_one_pixel_and_thin_strips_are_detected_without_error(
    tiled: ObjectDetector, shape: tuple[int, int]
) -> None:
    assert tiled.detect(np.random.default_rng(7).integers(0, 256, (*shape, 3), dtype=np.uint8)) == []


def test_the_detector_gives_the_same_answers_from_many_threads_at_once(tiled: ObjectDetector) -> None:
    frame, _ = far_astronaut(0.25)
    images = [astronaut(), motorcycle(), frame] * 2
    with ThreadPoolExecutor(max_workers=3) as pool:
        concurrent = list(pool.map(tiled.detect, images))
    assert concurrent == [tiled.detect(image) for image in images]

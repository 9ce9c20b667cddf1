"""The plate reader: DB post-processing, CTC decoding, the plate rule and crop mapping on constructed arrays;
the real PP-OCRv4 models on real photos of cars with hand-annotated plates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from processor.frames import BgrImage, Box
from processor.inference.builtin.models import BuiltinModels
from processor.inference.builtin.plate_reader import (
    Crop,
    PlateReader,
    looks_like_plate,
    plan_crop,
    plate_shaped,
    readable,
)
from processor.inference.builtin.text_detector import db_boxes, to_blob, unclip
from processor.inference.builtin.text_recognizer import ctc_greedy, cut_box, dictionary, ordered_corners
from processor.settings import BuiltinSettings
from tests.plate_photos import INDIAN_CAR, PHOTOS, SPORTS_CARS, PlatePhoto, Rect, load

# --- DB post-processing -----------------------------------------------------------------------------------------


def test_a_confident_region_becomes_one_box_grown_by_the_unclip_distance() -> None:
    probability = np.zeros((100, 200), np.float32)
    probability[40:60, 50:150] = 0.9  # 100 x 20 px
    [(quad, score)] = db_boxes(probability)
    assert 0.8 < score <= 0.9  # the rectangle of the dilated region includes its 1-px zero border
    distance = 101 * 21 * 1.6 / (2 * (101 + 21))  # the dilated region's rectangle is 101 x 21
    left, top = quad.min(axis=0)
    right, bottom = quad.max(axis=0)
    assert (left, top) == pytest.approx((50 - distance, 40 - distance), abs=1.0)
    assert (right, bottom) == pytest.approx((150 + distance, 60 + distance), abs=1.0)


def test_weak_thin_and_empty_regions_give_no_box() -> None:
    probability = np.zeros((100, 200), np.float32)
    probability[10:30, 10:90] = 0.4  # above the binary threshold, below the box score
    probability[70:72, 10:190] = 0.95  # 2 px high: noise
    assert db_boxes(probability) == []
    assert db_boxes(np.zeros((64, 64), np.float32)) == []


def test_unclip_of_a_tilted_rectangle_keeps_its_centre_and_angle() -> None:
    grown = unclip(((100.0, 50.0), (80.0, 20.0), 30.0), 1.6)
    (cx, cy), (w, h), _ = cv2.minAreaRect(grown.astype(np.float32))
    distance = 80 * 20 * 1.6 / 200
    assert (cx, cy) == pytest.approx((100, 50), abs=0.1)
    assert sorted((w, h)) == pytest.approx([20 + 2 * distance, 80 + 2 * distance], abs=0.1)


def test_detector_input_is_normalised_rgb_in_multiples_of_32_at_most_960() -> None:
    image = np.zeros((1080, 1920, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    blob = to_blob(image, 960)
    assert blob.shape == (1, 3, 544, 960)
    assert blob[0, :, 0, 0] == pytest.approx([(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225], abs=1e-5)
    assert to_blob(np.zeros((10, 10, 3), np.uint8), 960).shape == (1, 3, 32, 32)


# --- recogniser pieces ------------------------------------------------------------------------------------------


def test_ctc_greedy_merges_repeats_drops_blanks_and_keeps_a_doubled_letter_split_by_a_blank() -> None:
    characters = dictionary("A\nB\n1")  # blank, A, B, 1, space
    assert characters == ["", "A", "B", "1", " "]
    steps = [1, 1, 0, 1, 2, 2, 0, 0, 4, 3]  # A A _ A B B _ _ ' ' 1
    probabilities = np.full((len(steps), 5), 0.01, np.float32)
    probabilities[np.arange(len(steps)), steps] = 0.9
    text, confidence = ctc_greedy(probabilities, characters)
    assert text == "AAB 1"
    assert confidence == pytest.approx(0.9)
    assert ctc_greedy(np.eye(5, dtype=np.float32)[[0, 0, 0]], characters) == ("", 0.0)


def test_a_tilted_box_is_cut_out_level() -> None:
    image = np.full((200, 300, 3), 255, np.uint8)
    rect = ((150.0, 100.0), (160.0, 40.0), 20.0)
    cv2.fillPoly(image, [np.round(cv2.boxPoints(rect)).astype(np.int32)], (0, 0, 0))
    corners = ordered_corners(cv2.boxPoints(rect).astype(np.float64))
    assert corners[0][0] < corners[1][0] and corners[0][1] < corners[3][1]  # top-left, top-right, ..., bottom-left
    cut = cut_box(image, cv2.boxPoints(rect).astype(np.float64))
    assert cut.shape[:2] == (40, 160)
    assert cut[3:-3, 3:-3].max() < 60  # all of it is the black rectangle, none of the white around it


# --- plate rule and crops ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["MLB803", "MLB 803", "NO 23456", "MH14CS1938", "B-AB 1234", "H5901", "7ABC123", "沪A12345", "GNO6BG", "ABC1"],
)
def test_plate_texts_are_accepted(text: str) -> None:
    # a Chinese plate: one province character, then ASCII letters and digits; a UK plate whose 0 was read as O
    # (one digit is enough, so a four-character part of a plate read as "ABC1" is hidden too)
    assert looks_like_plate(text)


def test_plate_like_text_that_is_no_plate_is_hidden_too() -> None:
    assert looks_like_plate("TEL 0800")  # a phone number on a van: privacy first, a blur too many is no leak


@pytest.mark.parametrize("text", ["TOYOTA", "MERCEDES", "AB1", "ABCD", "12345678901", "www.example.com", ""])
def test_other_texts_are_rejected(text: str) -> None:
    assert not looks_like_plate(text)


def test_readable_needs_four_letters_or_digits() -> None:
    assert not readable("A1-")
    assert readable("AB12")


def test_plate_shaped_boxes_are_wide_and_low_in_the_vehicle() -> None:
    def quad(x: float, y: float, w: float, h: float) -> np.ndarray:
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)

    assert plate_shaped(quad(100, 400, 120, 30), crop_height=600)
    assert not plate_shaped(quad(100, 50, 120, 30), crop_height=600)  # roof, windows: too high
    assert not plate_shaped(quad(100, 400, 40, 40), crop_height=600)  # square
    assert not plate_shaped(quad(100, 400, 300, 20), crop_height=600)  # a 15:1 strip of text


def test_a_vehicle_crop_grows_by_5_percent_is_clipped_and_scaled_to_its_long_side_at_most_x8() -> None:
    crop = plan_crop(Box(100, 100, 300, 200, "vehicle"), 1920, 1080)
    assert crop == Crop(90, 95, 310, 205, pytest.approx(640 / 220))
    assert plan_crop(Box(100, 100, 300, 200, "vehicle"), 1920, 1080, 800) == Crop(90, 95, 310, 205, 800 / 220)
    far = plan_crop(Box(10, 10, 60, 40, "vehicle"), 1920, 1080)
    assert far is not None and far.scale == 8.0 and (far.left, far.top) == (7, 8)
    big = plan_crop(Box(-100, 0, 2000, 1080, "vehicle"), 1920, 1080)
    assert big == Crop(0, 0, 1920, 1080, pytest.approx(640 / 1920))
    assert plan_crop(Box(2000, 0, 2100, 50, "vehicle"), 1920, 1080) is None


def test_a_plate_box_is_its_text_box_grown_to_the_rim() -> None:
    crop = Crop(100, 50, 300, 150, 2.0)
    quad = np.array([[20, 40], [120, 40], [120, 80], [20, 80]], np.float64)  # 40 px text height in the crop
    assert crop.plate_box(quad) == Box(100, 65, 170, 95, "license_plate")  # 20 px across, 10 px up and down
    assert crop.plate_box(quad - [20, 0]).left == 100  # clipped to the crop


def test_crop_boxes_map_back_to_frame_pixels() -> None:
    crop = Crop(100, 50, 300, 150, 2.0)
    quad = np.array([[20, 40], [120, 40], [120, 80], [20, 80]], np.float64)
    assert crop.to_frame(quad) == Box(110, 70, 160, 90, "license_plate")
    outside = np.array([[-50, -50], [500, -50], [500, 500], [-50, 500]], np.float64)
    assert crop.to_frame(outside) == Box(100, 50, 300, 150, "license_plate")


# --- the real models on real photos -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


def covered(truth: Rect, boxes: list[Box], shape: tuple[int, ...]) -> float:
    """The share of ``truth``'s pixels inside the union of ``boxes``."""
    mask = np.zeros(shape[:2], bool)
    for box in boxes:
        mask[round(box.top) : round(box.bottom), round(box.left) : round(box.right)] = True
    left, top, right, bottom = (round(v) for v in truth)
    return float(mask[top:bottom, left:right].mean())


def overlaps_a_plate(box: Box, photo: PlatePhoto) -> bool:
    return any(
        min(box.right, right) > max(box.left, left) and min(box.bottom, bottom) > max(box.top, top)
        for left, top, right, bottom in photo.plates.values()
    )


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.requirement)
@pytest.mark.parametrize("with_vehicles", [True, False], ids=["vehicle crops", "whole frame"])
def test_every_annotated_plate_is_covered_and_nothing_else_is_boxed(
    reader: PlateReader, photo: PlatePhoto, with_vehicles: bool
) -> None:
    image = load(photo)
    vehicles = [Box(*v, "vehicle") for v in photo.vehicles] if with_vehicles else None
    boxes = reader.find_plates(image, vehicles)
    assert all(box.label == "license_plate" for box in boxes)
    assert {text: covered(truth, boxes, image.shape) >= 0.75 for text, truth in photo.plates.items()} == dict.fromkeys(
        photo.plates, True
    )
    assert [box for box in boxes if not overlaps_a_plate(box, photo)] == []


def test_the_recogniser_reads_the_plates(reader: PlateReader) -> None:
    texts: list[str] = []
    for photo in (SPORTS_CARS, INDIAN_CAR):
        image = load(photo)
        quads = [quad for quad, _ in reader._detector.detect(image)]
        texts += [text for text, _ in reader._recognizer.read(image, quads)]
    assert {"MLB803", "MH14CS1938"} <= set(texts)


def test_no_vehicle_means_no_plate_and_a_blank_frame_has_none(reader: PlateReader) -> None:
    assert reader.find_plates(load(SPORTS_CARS), []) == []
    blank: BgrImage = np.zeros((720, 1280, 3), np.uint8)
    assert reader.find_plates(blank) == []
    assert reader.find_plates(blank, [Box(0, 0, 1280, 720, "vehicle")]) == []


# --- the built-in model: NanoDet's vehicles and the whole frame ---------------------------------------------------


def far_view(image: BgrImage, boxes: list[Rect], factor: float = 0.5) -> tuple[BgrImage, list[Rect]]:
    """``image`` shrunk x``factor`` in the middle of a grey 1080p frame (a car further away), its boxes moved alike."""
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)[:1080, :1920]
    canvas: BgrImage = np.full((1080, 1920, 3), 128, np.uint8)
    x0, y0 = (1920 - small.shape[1]) // 2, (1080 - small.shape[0]) // 2
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return canvas, [
        (left * factor + x0, top * factor + y0, right * factor + x0, bottom * factor + y0)
        for left, top, right, bottom in boxes
    ]


@pytest.fixture(scope="module")
def models() -> BuiltinModels:
    return BuiltinModels()


def test_the_default_reads_a_plate_whose_vehicle_nanodet_misses(models: BuiltinModels) -> None:
    image = load(INDIAN_CAR)  # the scooter behind the car is not found as a vehicle: the whole-frame pass reads it
    boxes = models.run_detection("plate_reader", image)
    assert [covered(truth, boxes, image.shape) >= 0.75 for truth in INDIAN_CAR.plates.values()] == [True, True]
    assert [box for box in boxes if not overlaps_a_plate(box, INDIAN_CAR)] == []


def test_the_default_reads_far_plates_in_upscaled_vehicle_crops(models: BuiltinModels) -> None:
    image, truths = far_view(load(SPORTS_CARS), list(SPORTS_CARS.plates.values()))
    boxes = models.run_detection("plate_reader", image)
    assert [covered(truth, boxes, image.shape) >= 0.75 for truth in truths] == [True, True]
    assert len(boxes) == 2, "one box per plate, though both passes may find it"


def test_the_vehicles_of_plates_far_away_are_found_in_tiles(models: BuiltinModels) -> None:
    image, truths = far_view(load(SPORTS_CARS), list(SPORTS_CARS.plates.values()), factor=0.25)
    boxes = models.run_detection("plate_reader", image)
    assert [covered(truth, boxes, image.shape) >= 0.75 for truth in truths] == [True, True]
    untiled = BuiltinModels(BuiltinSettings(nanodet_stage_tile=None)).run_detection("plate_reader", image)
    assert [covered(truth, untiled, image.shape) >= 0.75 for truth in truths] == [False, False], (
        "NanoDet's whole-frame view misses both cars at this size: the tiles are what finds them"
    )


def test_the_plate_reader_must_read_somewhere() -> None:
    with pytest.raises(ValueError, match="plate_vehicles and plate_whole_frame are both off"):
        BuiltinSettings(plate_vehicles=False, plate_whole_frame=False)

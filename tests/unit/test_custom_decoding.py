"""The pure functions behind bring-your-own ONNX detectors: blobs, placements and every head format, on exact
tensors."""

from __future__ import annotations

import numpy as np
import pytest

from processor.inference.builtin.custom_decoding import (
    LETTERBOX_FILL,
    Detections,
    Normalisation,
    decode_detection_output,
    decode_ssd,
    decode_yolo,
    nms_per_class,
    to_blob,
    yolo_layout,
)

PLAIN = Normalisation(scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), rgb=False)


def test_yolo_v8_head_gives_corners_of_the_mapped_classes_above_their_thresholds() -> None:
    head = np.zeros((4 + 3, 40), np.float32)  # 3 classes, 40 candidates
    head[:, 0] = (50, 60, 20, 40, 0.9, 0.0, 0.0)  # class 0 at 0.9
    head[:, 1] = (100, 100, 10, 10, 0.0, 0.3, 0.0)  # class 1 below its 0.5 threshold
    head[:, 2] = (200, 150, 40, 20, 0.1, 0.7, 0.95)  # unmapped class 2 wins, mapped class 1 at 0.7 counts
    found = decode_yolo(head, {0: 0.5, 1: 0.5})
    assert found.boxes.tolist() == [[40, 40, 60, 80], [180, 140, 220, 160]]
    assert found.scores.tolist() == pytest.approx([0.9, 0.7])
    assert found.classes.tolist() == [0, 1]


def test_yolo_v5_head_multiplies_objectness_and_class_score() -> None:
    head = np.zeros((30, 5 + 2), np.float32)
    head[3] = (50, 60, 20, 40, 0.5, 0.0, 0.9)  # 0.45 for class 1
    head[4] = (10, 10, 4, 4, 0.2, 0.9, 0.0)  # 0.18 for class 0: below 0.3
    found = decode_yolo(head, {0: 0.3, 1: 0.3})
    assert found.boxes.tolist() == [[40, 40, 60, 80]]
    assert found.scores.tolist() == pytest.approx([0.45])
    assert found.classes.tolist() == [1]


def test_the_longer_axis_holds_the_candidates() -> None:
    assert yolo_layout((1, 84, 8400)) == "v8"
    assert yolo_layout((1, 25200, 85)) == "v5"


def test_ssd_boxes_are_fractions_of_the_input_and_background_is_not_mapped() -> None:
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], np.float32)
    scores = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05]], np.float32)  # candidate 2 is background (class 0)
    found = decode_ssd(boxes, scores, (300, 200), {1: 0.5, 2: 0.5})
    assert found.boxes.ravel().tolist() == pytest.approx([30, 40, 150, 120])
    assert found.classes.tolist() == [1]
    assert found.scores.tolist() == pytest.approx([0.8])


def test_detection_output_rows_skip_padding_and_low_scores() -> None:
    rows = np.array(
        [[0, 1, 0.9, 0.1, 0.1, 0.2, 0.3], [0, 1, 0.2, 0.5, 0.5, 0.6, 0.6], [-1, 0, 0, 0, 0, 0, 0]], np.float32
    )
    found = decode_detection_output(rows, (100, 100), {1: 0.5})
    assert found.boxes.ravel().tolist() == pytest.approx([10, 10, 20, 30])
    assert found.classes.tolist() == [1]


def test_nms_merges_overlaps_of_one_class_only() -> None:
    detections = Detections(
        np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], np.float32),
        np.array([0.6, 0.9, 0.5], np.float32),
        np.array([0, 0, 1], np.int64),
    )
    kept = nms_per_class(detections, 0.45)
    assert kept.boxes.tolist() == [[1, 1, 11, 11], [0, 0, 10, 10]]
    assert kept.classes.tolist() == [0, 1]


def test_letterbox_centres_the_image_and_maps_boxes_back() -> None:
    image = np.full((100, 200, 3), 10, np.uint8)
    blob, placement = to_blob(image, (64, 64), True, PLAIN)
    assert blob.shape == (1, 3, 64, 64)
    assert (placement.scale_x, placement.scale_y, placement.pad_x, placement.pad_y) == (0.32, 0.32, 0.0, 16.0)
    assert blob[0, :, 0, 0].tolist() == [LETTERBOX_FILL] * 3  # bar
    assert blob[0, :, 32, 32].tolist() == [10, 10, 10]  # image
    back = placement.to_image(np.array([[0, 16, 64, 48]], np.float32))
    assert back.ravel().tolist() == pytest.approx([0, 0, 200, 100])


def test_stretch_scales_each_axis_and_normalisation_applies_per_channel_in_rgb_order() -> None:
    image = np.zeros((50, 100, 3), np.uint8)
    image[..., 0] = 200  # blue
    normalisation = Normalisation(scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5), rgb=True)
    blob, placement = to_blob(image, (20, 10), False, normalisation)
    assert (placement.scale_x, placement.scale_y, placement.pad_x, placement.pad_y) == (0.2, 0.2, 0.0, 0.0)
    assert blob[0, :, 5, 5].tolist() == pytest.approx([-1.0, -2.0, (200 / 255 - 0.5) / 0.5])  # R, G, B planes

"""The recall harness's rules on constructed boxes and arrays: found, false positive, size bucket, hidden, and the
1080p view that moves the truth boxes with the pixels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from processor.bench.recall import by_size, format_recall
from processor.bench.recall_metrics import false_positives, found_flags, is_hidden, size_bucket
from processor.bench.recall_set import AnnotatedImage, SetMissing, in_context, load_set
from processor.frames import BgrImage


def test_a_truth_is_found_by_overlap_or_by_being_covered() -> None:
    truth = (100.0, 100.0, 200.0, 200.0)
    assert found_flags([truth], [(110, 110, 210, 210)]) == [True]  # IoU 0.68
    assert found_flags([truth], [(0, 0, 400, 400)]) == [True]  # IoU 0.06, but covers all of it
    assert found_flags([truth], [(100, 100, 140, 200)]) == [True]  # IoU 0.4
    assert found_flags([truth], [(100, 100, 120, 200)]) == [False]  # IoU 0.2, covers 20 %
    assert found_flags([truth], []) == [False]


def test_a_false_positive_finds_nothing_and_is_not_a_part_of_a_truth() -> None:
    truth = (100.0, 100.0, 200.0, 200.0)
    assert false_positives([truth], [(110, 110, 210, 210)]) == 0
    assert false_positives([truth], [(100, 100, 120, 120)]) == 0, "a part of the annotated object"
    assert false_positives([truth], [(300, 300, 340, 340), (0, 0, 10, 10)]) == 2
    assert false_positives([], [(0, 0, 10, 10)]) == 1


def test_size_buckets_are_by_the_shorter_side() -> None:
    assert [size_bucket((0, 0, 300, h)) for h in (19, 20, 49, 50, 149, 150)] == [
        "<20", "20-50", "20-50", "50-150", "50-150", ">=150",
    ]  # fmt: skip
    assert by_size([(0, 0, 10, 10), (0, 0, 30, 30), (0, 0, 40, 40)], [True, False, True]) == "<20: 1/1, 20-50: 1/2"


def noise(height: int, width: int, seed: int = 0) -> BgrImage:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_a_region_is_hidden_when_blurred_or_blackened_and_not_when_kept() -> None:
    before = noise(200, 200)
    box = (50.0, 50.0, 150.0, 150.0)
    blurred = before.copy()
    blurred[50:150, 50:150] = cv2.GaussianBlur(before[50:150, 50:150], (31, 31), 0)
    blackened = before.copy()
    blackened[50:150, 50:150] = 0
    half = before.copy()
    half[50:150, 50:100] = 0
    assert is_hidden(before, blurred, box) and is_hidden(before, blackened, box)
    assert not is_hidden(before, before, box)
    assert not is_hidden(before, half, box), "half the region left as it was"


def test_a_blurred_smooth_region_is_hidden_though_parts_changed_little() -> None:
    rows = np.linspace(60, 190, 200)[:, None, None]
    before = np.clip(rows + noise(200, 200) / 16, 0, 255).astype(np.uint8)  # a shaded, slightly textured surface
    box = (50.0, 50.0, 150.0, 150.0)
    blurred = before.copy()
    blurred[50:150, 50:150] = cv2.GaussianBlur(before[50:150, 50:150], (31, 31), 0)
    changed = (np.abs(blurred.astype(int) - before.astype(int)) > 8).any(axis=2)[50:150, 50:150].mean()
    assert changed < 0.9, "the blur left most pixels within 8 levels: the changed-share rule alone misses it"
    assert is_hidden(before, blurred, box)
    half = before.copy()
    half[50:150, 50:100] = blurred[50:150, 50:100]
    assert not is_hidden(before, half, box), "the other half keeps its detail"


def test_the_1080p_view_moves_the_boxes_with_the_pixels() -> None:
    pixels = np.zeros((400, 600, 3), np.uint8)
    pixels[100:200, 300:400] = 255
    far = in_context(AnnotatedImage("square", pixels, {"face": [(300.0, 100.0, 400.0, 200.0)]}))
    assert far.pixels.shape == (1080, 1920, 3)
    ((left, top, right, bottom),) = far.boxes["face"]
    assert (right - left, bottom - top) == (50, 50)
    inside = far.pixels[round(top) + 2 : round(bottom) - 2, round(left) + 2 : round(right) - 2]
    assert inside.min() > 200, "the white square is where its box went"


def test_the_report_is_two_markdown_tables() -> None:
    detection = {
        "kind": "detection", "view": "native", "label": "face", "model": "centerface", "images": 1, "objects": 2,
        "found": 1, "recall": 0.5, "by_size": "20-50: 1/2", "false_per_image": 0.0, "cpu_ms_per_image": 90,
    }  # fmt: skip
    hidden = {"kind": "hidden", "view": "native", "label": "face", "model": "pipeline", "objects": 2, "hidden": 2}
    text = format_recall([detection, hidden])
    assert "| native | face | centerface | 1 | 2 | 20-50: 1/2 | 0.0 | 90 |" in text
    assert "| native | face | pipeline | 2 | 2 |" in text


def test_the_set_loads_raw_pixels_and_leaves_skipped_labels_unscored(tmp_path: Path) -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = 255
    encoded = cv2.imencode(".png", image)[1].tobytes()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "crowd.png").write_bytes(encoded)
    entry = {
        "id": "crowd",
        "member": "data/crowd.png",
        "sha256": hashlib.sha256(encoded).hexdigest(),
        "boxes": {"face": [[1, 2, 11, 12]], "person": [[0, 0, 30, 40]], "license_plate": []},
        "skip_labels": ["person"],
    }
    (loaded,) = load_set(tmp_path, {"packages": {}, "images": [entry]})
    assert loaded.boxes == {"face": [(1.0, 2.0, 11.0, 12.0)], "license_plate": []}, "person is not scored here"
    assert (loaded.pixels == image).all()
    (tmp_path / "images" / "crowd.png").write_bytes(encoded + b"altered")
    with pytest.raises(SetMissing, match="--fetch"):
        load_set(tmp_path, {"packages": {}, "images": [entry]})

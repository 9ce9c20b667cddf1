"""Far faces in upscaled head crops of person boxes: the crop window, and CenterFace on a real face too small for
the whole-frame pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from processor.frames import BgrImage, Box
from processor.inference.builtin.faces import FaceDetector
from processor.inference.builtin.head_crops import far_faces, head_window
from processor.inference.builtin.models import BuiltinModels
from processor.settings import BuiltinSettings

Rect = tuple[float, float, float, float]
ASTRONAUT_FACE = (170, 70, 230, 150)  # in the 512 x 512 portrait


def iou(a: Rect, b: Rect) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    shared = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - shared
    return shared / union


def test_the_head_window_is_the_top_of_a_far_person_with_a_margin_clipped_to_the_frame() -> None:
    assert head_window(Box(100, 200, 140, 300, "person"), 1920, 1080) == (96, 190, 144, 245)
    assert head_window(Box(0, 0, 40, 100, "person"), 1920, 1080) == (0, 0, 44, 45)
    assert head_window(Box(100, 200, 260, 600, "person"), 1920, 1080) is None, "near: the whole frame sees its face"
    assert head_window(Box(100, 200, 101, 203, "person"), 1920, 1080) is None, "a sliver has no head to search"


@pytest.fixture(scope="module")
def far_astronaut(astronaut_bgr: BgrImage) -> tuple[BgrImage, Box, Rect]:
    """The portrait x0.1 (a 6 x 8 px face) in a grey 1080p frame, her person box and her face box."""
    factor, x0, y0 = 0.1, 900, 500
    small = cv2.resize(astronaut_bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    frame[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    person = Box(x0, y0, x0 + small.shape[1], y0 + small.shape[0], "person")
    left, top, right, bottom = ASTRONAUT_FACE
    return frame, person, (left * factor + x0, top * factor + y0, right * factor + x0, bottom * factor + y0)


def test_a_face_too_small_for_the_whole_frame_is_found_in_its_head_crop(
    far_astronaut: tuple[BgrImage, Box, Rect],
) -> None:
    frame, person, face = far_astronaut
    detector = FaceDetector(max_side=1440, threshold=0.2)
    whole = [(box.left, box.top, box.right, box.bottom) for box in detector.detect(frame)]
    assert all(iou(box, face) < 0.3 for box in whole), "the whole-frame pass does not find this face"
    found = far_faces(detector, frame, [person])
    assert [iou((box.left, box.top, box.right, box.bottom), face) >= 0.3 for box in found] == [True]
    assert far_faces(detector, frame, [Box(100, 100, 140, 200, "person")]) == [], "no face on grey"


def test_the_head_crops_lose_no_whole_frame_face_and_fast_turns_them_off(
    far_astronaut: tuple[BgrImage, Box, Rect],
) -> None:
    frame, _, _ = far_astronaut
    without = BuiltinModels(BuiltinSettings(face_head_crops=False)).run_detection("centerface", frame)
    with_crops = BuiltinModels().run_detection("centerface", frame)
    kept = [
        box
        for box in without
        if any(
            iou((box.left, box.top, box.right, box.bottom), (big.left, big.top, big.right, big.bottom)) > 0
            for big in with_crops
        )
    ]
    assert kept == without, "every whole-frame face stays covered"
    assert BuiltinSettings(preset="fast").face_head_crops is False

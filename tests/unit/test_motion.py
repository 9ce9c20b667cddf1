"""The synthetic camera of the video recall harness: the truth boxes follow the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from processor.bench.motion import Motion, camera_path, move_box, move_boxes, render

FRAME = (1920, 1080)


def marked_photo() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A dark 800x600 photo with a red 40x30 marker at (500, 200)."""
    photo = np.full((600, 800, 3), 30, np.uint8)
    photo[200:230, 500:540] = (0, 0, 255)
    return photo, (500.0, 200.0, 540.0, 230.0)


def test_the_marker_lands_in_its_moved_box_in_every_frame() -> None:
    photo, box = marked_photo()
    for motion in camera_path(12, (800, 600), FRAME, seed=3):
        frame = render(photo, motion, FRAME)
        moved = move_box(box, motion, FRAME)
        assert moved is not None
        left, top, right, bottom = (round(v) for v in moved)
        inside = frame[top + 2 : bottom - 2, left + 2 : right - 2]
        assert (inside == (0, 0, 255)).all(axis=2).mean() > 0.95
        red = (frame[:, :, 2] > 128) & (frame[:, :, 0] < 100)
        ys, xs = np.nonzero(red)
        assert left - 2 <= xs.min() and xs.max() <= right + 2 and top - 2 <= ys.min() and ys.max() <= bottom + 2


def test_the_camera_pans_zooms_in_and_shakes_reproducibly() -> None:
    path = camera_path(48, (800, 600), FRAME, seed=7)
    assert path == camera_path(48, (800, 600), FRAME, seed=7)
    assert path != camera_path(48, (800, 600), FRAME, seed=8)
    assert path[-1].scale == pytest.approx(1.3 * path[0].scale)
    centres = [m.dx + m.scale * 400 for m in path]
    assert centres[0] > FRAME[0] / 2 + 200 and centres[-1] < FRAME[0] / 2 - 200


def test_boxes_leaving_the_frame_are_clipped_then_dropped() -> None:
    motion = Motion(1.0, -100.0, 0.0)
    assert move_box((120.0, 10.0, 220.0, 60.0), motion, FRAME) == (20.0, 10.0, 120.0, 60.0)
    assert move_box((60.0, 10.0, 160.0, 60.0), motion, FRAME) == (0.0, 10.0, 60.0, 60.0), "60 % kept: clipped"
    assert move_box((40.0, 10.0, 140.0, 60.0), motion, FRAME) is None, "40 % kept: dropped"
    assert move_box((0.0, 0.0, 90.0, 50.0), motion, FRAME) is None, "wholly outside"
    kept = move_boxes([(0.0, 0.0, 90.0, 50.0), (300.0, 300.0, 340.0, 340.0)], motion, FRAME)
    assert kept == [(1, (200.0, 300.0, 240.0, 340.0))], "the index follows the object"

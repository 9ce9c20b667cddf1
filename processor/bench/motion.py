"""Synthetic camera motion for the video recall harness (pure functions): a photo filmed by a camera that pans,
zooms in and shakes a little, so that every frame's truth boxes are known exactly.

Frame t of n shows the photo through the affine ``x' = s_t * x + tx_t``, ``y' = s_t * y + ty_t`` (no rotation,
so a box stays a box): ``s_t`` grows from the scale that fits the photo into 90 % of the frame to 1.3 times it
(zoom in), the photo's centre slides from 12 % of the frame's width right of centre to 12 % left of it (pan),
plus a seeded Gaussian shake of ``SHAKE_PX`` per axis. Boxes go through the same affine and are clipped to the
frame; a box keeping less than half of its area inside the frame, or under ``MIN_SIDE`` px on a side, is dropped
(it is no longer a face anyone sees whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from processor.bench.recall_metrics import Rect, area
from processor.frames import BgrImage

FIT = 0.9
ZOOM = 1.3
PAN = 0.12
SHAKE_PX = 2.0
MIN_SIDE = 4.0
KEPT_SHARE = 0.5
BORDER_GREY = 128


@dataclass(frozen=True, slots=True)
class Motion:
    """One frame's camera: ``x' = scale * x + dx``, ``y' = scale * y + dy``."""

    scale: float
    dx: float
    dy: float

    def matrix(self) -> np.ndarray:
        """The 2x3 matrix of ``cv2.warpAffine``."""
        return np.array([[self.scale, 0.0, self.dx], [0.0, self.scale, self.dy]], np.float64)


def camera_path(frames: int, photo_size: tuple[int, int], frame_size: tuple[int, int], seed: int) -> list[Motion]:
    """The motion of each of ``frames`` frames (sizes as (W, H)); the same seed gives the same shake."""
    if frames < 1:
        raise ValueError("camera_path: at least one frame")
    photo_w, photo_h = photo_size
    width, height = frame_size
    fit = FIT * min(width / photo_w, height / photo_h)
    shake = np.random.default_rng(seed).normal(0.0, SHAKE_PX, size=(frames, 2))
    path = []
    for index in range(frames):
        progress = index / (frames - 1) if frames > 1 else 0.0
        scale = fit * (1 + (ZOOM - 1) * progress)
        centre_x = width / 2 + PAN * width * (1 - 2 * progress)
        dx = centre_x - scale * photo_w / 2 + float(shake[index, 0])
        dy = height / 2 - scale * photo_h / 2 + float(shake[index, 1])
        path.append(Motion(scale, dx, dy))
    return path


def render(photo: BgrImage, motion: Motion, frame_size: tuple[int, int]) -> BgrImage:
    """The frame: ``photo`` through ``motion`` on a grey background of ``frame_size`` (W, H)."""
    grey = (BORDER_GREY, BORDER_GREY, BORDER_GREY)
    warped = cv2.warpAffine(
        photo, motion.matrix(), frame_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=grey
    )
    return np.asarray(warped, np.uint8)


def move_box(box: Rect, motion: Motion, frame_size: tuple[int, int]) -> Rect | None:
    """``box`` of the photo in the frame (clipped to it), or None when it mostly left the frame (module docstring)."""
    moved = (
        box[0] * motion.scale + motion.dx,
        box[1] * motion.scale + motion.dy,
        box[2] * motion.scale + motion.dx,
        box[3] * motion.scale + motion.dy,
    )
    width, height = frame_size
    clipped = (max(0.0, moved[0]), max(0.0, moved[1]), min(float(width), moved[2]), min(float(height), moved[3]))
    if min(clipped[2] - clipped[0], clipped[3] - clipped[1]) < MIN_SIDE:
        return None
    if area(clipped) < KEPT_SHARE * area(moved):
        return None
    return clipped


def move_boxes(boxes: Sequence[Rect], motion: Motion, frame_size: tuple[int, int]) -> list[tuple[int, Rect]]:
    """The boxes still in the frame, each with its index in ``boxes`` (an object's identity across frames)."""
    kept = []
    for index, box in enumerate(boxes):
        moved = move_box(box, motion, frame_size)
        if moved is not None:
            kept.append((index, moved))
    return kept

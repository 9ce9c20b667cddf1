"""Which frames the box detectors run on when ``video.detect_every`` is above 1 (pure functions).

Every ``detect_every``-th frame is a keyframe, and also:

- a frame that starts a new scene (:func:`scene_cut` against the frame before: tracks cannot bridge a cut), together
  with the frame before it, so that no frame is interpolated between two scenes;
- the frame after a damaged one (damaged frames are blackened, never detected);
- the frame halfway between two keyframes whose detections do not agree well enough to interpolate between them
  (:func:`needs_middle`: unmatched objects at both ends, or one moving more than :data:`MAX_STEP` of its size), and
  so on, halving, until they agree or are neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from processor.frames import BgrImage, Box
from processor.video.tracking import MATCH_IOU, iou

Signature = npt.NDArray[np.float32]

SIGNATURE_SIZE = (32, 18)
"""W × H of the grey thumbnail two frames are compared by."""

CUT_DIFFERENCE = 40.0
"""Mean absolute grey difference (0–255) between two thumbnails above which the second frame starts a new scene."""

MAX_STEP = 0.5
"""A matched object whose centre moved more than this share of its width (or height) sideways (or up or down)
between two keyframes gets the frame in between detected too."""


def signature(pixels: BgrImage) -> Signature:
    """A grey thumbnail of the frame (about 1 ms at 1080p)."""
    small = cv2.resize(pixels, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), np.float32)


def scene_cut(before: Signature, after: Signature) -> bool:
    """Whether the frame of ``after`` starts a new scene after the frame of ``before``."""
    return float(np.abs(after - before).mean()) > CUT_DIFFERENCE


def needs_middle(first: Sequence[Box], second: Sequence[Box]) -> bool:
    """Whether the detections of one entry at two keyframes disagree so that the frame between must be detected:
    a box at each end that overlaps none at the other (IoU < :data:`~processor.video.tracking.MATCH_IOU`: maybe one
    object that moved too far to be matched), or a matched box that moved more than :data:`MAX_STEP` of its width
    or height. A box at one end only is no reason: its track is extended over the frames between anyway."""
    unmatched = [False, False]
    for side, (ours, theirs) in enumerate(((first, second), (second, first))):
        for box in ours:
            best = max(theirs, key=lambda other: iou(box, other), default=None)
            if best is None or iou(box, best) < MATCH_IOU:
                unmatched[side] = True
                continue
            dx = (best.left + best.right - box.left - box.right) / 2
            dy = (best.top + best.bottom - box.top - box.bottom) / 2
            if abs(dx) > MAX_STEP * abs(box.right - box.left) or abs(dy) > MAX_STEP * abs(box.bottom - box.top):
                return True
    return all(unmatched)

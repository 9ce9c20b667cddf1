"""Which frames the box detectors run on when ``video.detect_every`` is above 1 (pure functions).

Every ``detect_every``-th frame is a keyframe, and also:

- a frame that starts a new scene (:func:`scene_cut` against the frame before: tracks cannot bridge a cut), together
  with the frame before it, so that no frame is interpolated between two scenes;
- the frame after a damaged one (damaged frames are blackened, never detected);
- the frames between two keyframes whose detections do not agree well enough to interpolate between them
  (:func:`needs_middle`: unmatched objects at both ends, or one moving more than :data:`MAX_STEP` of its size), all
  at once (halving would detect one frame after the other, and fast motion needs most of them anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from processor.frames import BgrImage, Box
from processor.video.tracking import MATCH_IOU, MIN_STEP, continues, step

Signature = npt.NDArray[np.float32]

SIGNATURE_SIZE = (32, 18)
"""W × H of the grey thumbnail two frames are compared by."""

CUT_DIFFERENCE = 40.0
"""Mean absolute grey difference (0–255) between two thumbnails above which the second frame starts a new scene."""

MAX_STEP = 0.5
"""A matched object whose centre moved more than this share of its width (or height) sideways (or up or down)
between two keyframes, and more than :data:`~processor.video.tracking.MIN_STEP` px, gets the frame in between
detected too."""


def signature(pixels: BgrImage) -> Signature:
    """A grey thumbnail of the frame: every 8th pixel of every 8th row, averaged down (about 1 ms at 1080p, where
    averaging all pixels takes 12 ms of the event loop)."""
    step = max(1, min(pixels.shape[0] // SIGNATURE_SIZE[1], pixels.shape[1] // SIGNATURE_SIZE[0], 8))
    small = cv2.resize(np.ascontiguousarray(pixels[::step, ::step]), SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), np.float32)


def scene_cut(before: Signature, after: Signature) -> bool:
    """Whether the frame of ``after`` starts a new scene after the frame of ``before``."""
    return float(np.abs(after - before).mean()) > CUT_DIFFERENCE


def needs_middle(first: Sequence[Box], second: Sequence[Box]) -> bool:
    """Whether the detections of one entry at two keyframes disagree so that the frame between must be detected:
    a box at each end that continues none at the other (:func:`~processor.video.tracking.continues`: maybe one
    object that moved too far to be matched), or a matched box that moved more than :data:`MAX_STEP` of its width
    or height (and more than :data:`~processor.video.tracking.MIN_STEP` px). A box at one end only is no reason:
    its track is extended over the frames between anyway."""
    unmatched = [False, False]
    for side, (ours, theirs) in enumerate(((first, second), (second, first))):
        for box in ours:
            best = max(theirs, key=lambda other: continues(box, other), default=None)
            if best is None or continues(box, best) < MATCH_IOU:
                unmatched[side] = True
                continue
            dx, dy = step(box, best)
            width, height = abs(box.right - box.left), abs(box.bottom - box.top)
            if abs(dx) > max(MAX_STEP * width, MIN_STEP) or abs(dy) > max(MAX_STEP * height, MIN_STEP):
                return True
    return all(unmatched)

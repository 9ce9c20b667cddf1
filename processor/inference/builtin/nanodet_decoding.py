"""NanoDet's input and output, as pure array functions: the letterboxed normalised blob, and the decoding of its
GFL heads (class scores + distance distributions per cell) into boxes.

The converted graph takes a 1x3x416x416 NCHW BGR blob and answers, per stride 8/16/32, the cells' sigmoid class
scores (1 x cells x 80, cells row-major) and their box distributions (1 x cells x 44: left, top, right, bottom,
11 bins each, logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from processor.frames import BgrImage

INPUT_SIDE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10  # the distance to each side is a distribution over 0..REG_MAX strides
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Detections:
    """N boxes (x1, y1, x2, y2) in network pixels, their scores and COCO class ids."""

    boxes: Floats
    scores: Floats
    classes: Ints


def to_blob(image: BgrImage, side: int = INPUT_SIDE) -> tuple[Floats, float]:
    """The 1x3xSxS normalised input and the factor applied to the image.

    The image keeps its aspect ratio (stretching loses persons) and sits in the top-left corner; the rest is
    black, as in NanoDet's own letterboxing, so network coordinates are image coordinates times the factor.
    """
    height, width = image.shape[:2]
    scale = side / max(height, width)
    new_w, new_h = min(side, max(1, round(width * scale))), min(side, max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.zeros((side, side, 3), np.float32)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    normalised = (canvas - np.array(MEAN_BGR, np.float32)) / np.array(STD_BGR, np.float32)
    blob: Floats = np.ascontiguousarray(normalised.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
    return blob, scale


def distances(logits: Floats) -> Floats:
    """Nx4 expected distances in strides from Nx(4*(REG_MAX+1)) bin logits: softmax over each side's bins."""
    bins = logits.reshape(-1, 4, REG_MAX + 1).astype(np.float64)
    weights = np.exp(bins - bins.max(axis=2, keepdims=True))
    weights /= weights.sum(axis=2, keepdims=True)
    expected: Floats = (weights @ np.arange(REG_MAX + 1, dtype=np.float64)).astype(np.float32)
    return expected


def decode_level(
    scores: Floats, box_logits: Floats, stride: int, classes: Ints, threshold: float, side: int = INPUT_SIDE
) -> Detections:
    """The (cell, class) pairs of one stride whose score reaches ``threshold``, among ``classes`` only.

    ``scores`` is cells x 80, ``box_logits`` cells x 44, cells row-major over a (side/stride)^2 grid; a cell's
    centre is ((col + 0.5) * stride, (row + 0.5) * stride).
    """
    columns = side // stride
    cells, picked = np.nonzero(scores[:, classes] >= threshold)
    centre_x = (cells % columns + 0.5) * stride
    centre_y = (cells // columns + 0.5) * stride
    left, top, right, bottom = (distances(box_logits[cells]) * stride).T
    boxes = np.stack([centre_x - left, centre_y - top, centre_x + right, centre_y + bottom], axis=1)
    return Detections(
        boxes=boxes.astype(np.float32).reshape(-1, 4),
        scores=scores[cells, classes[picked]].astype(np.float32),
        classes=classes[picked].astype(np.int64),
    )


def decode(
    outputs: dict[int, tuple[Floats, Floats]], classes: Ints, threshold: float, side: int = INPUT_SIDE
) -> Detections:
    """Every stride's detections together; ``outputs`` maps stride -> (scores, box logits) of one image."""
    levels = [decode_level(s, b, stride, classes, threshold, side) for stride, (s, b) in sorted(outputs.items())]
    return Detections(
        boxes=np.concatenate([level.boxes for level in levels]).reshape(-1, 4),
        scores=np.concatenate([level.scores for level in levels]),
        classes=np.concatenate([level.classes for level in levels]),
    )

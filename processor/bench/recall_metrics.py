"""Recall metrics of detections against hand-annotated truth boxes (pure functions, boxes as (l, t, r, b)).

Rules:

- a truth box is **found** when one detection of its label has IoU >= 0.3 with it, or covers >= 50 % of its area;
- a detection is a **false positive** when it finds no truth box of its label and lies less than 50 % inside
  every truth box of that label (a detection of part of an annotated face is not a false positive);
- the **size bucket** of a truth box is its shorter side: < 20 px, 20-50, 50-150, >= 150 px;
- a region is **hidden** in an output when >= 90 % of its pixels changed by more than 8 grey levels (in any
  channel) from the input, or its pixel standard deviation fell below 25 % of the input's (a flat fill or a
  blackening of a region that was already flat-ish), or its fine detail (the mean absolute Laplacian of its grey
  pixels, regions of at least 3 x 3 px) fell below 25 % of the input's: a blur of a smooth face or plate leaves
  parts within 8 levels of the input (a cheek, a plate's background), yet no detail; a region left partly as it
  was keeps the detail of that part.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from processor.frames import BgrImage

Rect = tuple[float, float, float, float]

FOUND_IOU = 0.3
FOUND_COVERAGE = 0.5
SIZE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<20", 0, 20),
    ("20-50", 20, 50),
    ("50-150", 50, 150),
    (">=150", 150, float("inf")),
)
CHANGE_TOLERANCE = 8
HIDDEN_CHANGED_SHARE = 0.9
HIDDEN_STD_RATIO = 0.25
HIDDEN_DETAIL_RATIO = 0.25


def area(box: Rect) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Rect, b: Rect) -> float:
    return area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def iou(a: Rect, b: Rect) -> float:
    shared = intersection(a, b)
    union = area(a) + area(b) - shared
    return shared / union if union > 0 else 0.0


def finds(detection: Rect, truth: Rect) -> bool:
    """Whether ``detection`` finds ``truth`` (IoU >= 0.3, or >= 50 % of the truth box covered)."""
    truth_area = area(truth)
    if truth_area <= 0:
        return False
    return iou(detection, truth) >= FOUND_IOU or intersection(detection, truth) / truth_area >= FOUND_COVERAGE


def found_flags(truths: Sequence[Rect], detections: Sequence[Rect]) -> list[bool]:
    """One flag per truth box: found by any detection."""
    return [any(finds(detection, truth) for detection in detections) for truth in truths]


def false_positives(truths: Sequence[Rect], detections: Sequence[Rect]) -> int:
    """Detections that find no truth box and lie less than half inside every truth box."""
    count = 0
    for detection in detections:
        own = area(detection)
        matched = any(finds(detection, truth) for truth in truths)
        inside = own > 0 and any(intersection(detection, truth) / own >= 0.5 for truth in truths)
        count += not (matched or inside)
    return count


def size_bucket(box: Rect) -> str:
    """The bucket of the box's shorter side."""
    side = min(box[2] - box[0], box[3] - box[1])
    return next(name for name, low, high in SIZE_BUCKETS if low <= side < high)


def recall(found: Sequence[bool]) -> float | None:
    return sum(found) / len(found) if found else None


def is_hidden(before: BgrImage, after: BgrImage, box: Rect) -> bool:
    """Whether the region ``box`` of ``before`` was hidden in ``after`` (same size): the rule of the docstring."""
    height, width = before.shape[:2]
    left, top = max(0, int(box[0])), max(0, int(box[1]))
    right, bottom = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if right <= left or bottom <= top:
        return True
    region_before = before[top:bottom, left:right].astype(np.int16)
    region_after = after[top:bottom, left:right].astype(np.int16)
    changed = (np.abs(region_after - region_before) > CHANGE_TOLERANCE).any(axis=2)
    if float(changed.mean()) >= HIDDEN_CHANGED_SHARE:
        return True
    std_before = float(region_before.std())
    if std_before > 0 and float(region_after.std()) < HIDDEN_STD_RATIO * std_before:
        return True
    detail_before = _detail(before[top:bottom, left:right])
    return detail_before > 0 and _detail(after[top:bottom, left:right]) < HIDDEN_DETAIL_RATIO * detail_before


def _detail(region: BgrImage) -> float:
    """The mean absolute Laplacian of the region's grey pixels (0 below 3 x 3 px)."""
    if min(region.shape[:2]) < 3:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)[1:-1, 1:-1]).mean())

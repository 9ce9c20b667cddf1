"""Temporal smoothing: a region found in frame t is also hidden in frames t-k … t+k.

Detectors miss a face now and then for one frame (motion blur, a turned head), and in a video that one frame
shows it. Hiding each detection in its k neighbours too closes such gaps; the cost is hiding a little more
than needed around each detection, which is the safe side. What frame t gets is a pure function of the
localizations of the frames around it; the caller keeps the window (k past frames, k future frames), so
memory stays bounded whatever the video's length.

Only detection boxes are smoothed (a segmentation mask stays as found), and only for the chosen labels. A
neighbour's box is dropped when the frame found that object itself (IoU ≥ :data:`SAME_OBJECT_IOU` with one of
its own boxes), so a face found in every frame is hidden with its own box alone, and when it nearly coincides
with a box already added from a nearer neighbour (IoU ≥ :data:`DUPLICATE_IOU`). A face missed in frame t thus
gets the boxes of t-1 and t+1, whose union covers where it moved in between.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from processor.frames import Box, Localization

SAME_OBJECT_IOU = 0.3
"""Overlap (intersection over union) above which a neighbour's box shows an object the frame found itself."""

DUPLICATE_IOU = 0.8
"""Overlap above which a neighbour's box adds nothing to a box added from a nearer neighbour."""


@dataclass(frozen=True, slots=True)
class Smoothed:
    """A frame's localizations with its neighbours' boxes added, and how many were added per entry."""

    localizations: list[Localization]
    added: list[int]


def smooth(
    current: Sequence[Localization],
    past: Sequence[Sequence[Localization]],
    future: Sequence[Sequence[Localization]],
    labels: Collection[str],
) -> Smoothed:
    """Frame t's localizations (one per configuration entry) with the boxes of its neighbours added.

    :param past: the localizations of frames t-k … t-1, oldest first (fewer at the start of a video).
    :param future: the localizations of frames t+1 … t+k, nearest first (fewer at the end).
    :param labels: the labels smoothed; entries with other labels, and masks, are returned unchanged.
    """
    nearest_first = [
        frame for pair in itertools.zip_longest(reversed(past), future) for frame in pair if frame is not None
    ]
    localizations: list[Localization] = []
    added: list[int] = []
    for index, own in enumerate(current):
        if own.label not in labels or own.mask is not None:
            localizations.append(own)
            added.append(0)
            continue
        extra: list[Box] = []
        for neighbour in nearest_first:
            found = neighbour[index]
            if found.mask is None:
                extra.extend(box for box in found.boxes if _adds(box, own.boxes, extra))
        localizations.append(dataclasses.replace(own, boxes=own.boxes + tuple(extra)))
        added.append(len(extra))
    return Smoothed(localizations, added)


def _adds(box: Box, own: Sequence[Box], extra: Sequence[Box]) -> bool:
    return all(iou(box, kept) < SAME_OBJECT_IOU for kept in own) and all(
        iou(box, kept) < DUPLICATE_IOU for kept in extra
    )


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two boxes (edges normalised, so inverted boxes compare by their area)."""
    a_left, a_right = sorted((first.left, first.right))
    a_top, a_bottom = sorted((first.top, first.bottom))
    b_left, b_right = sorted((second.left, second.right))
    b_top, b_bottom = sorted((second.top, second.bottom))
    width = min(a_right, b_right) - max(a_left, b_left)
    height = min(a_bottom, b_bottom) - max(a_top, b_top)
    if width <= 0 or height <= 0:
        return 0.0
    intersection = width * height
    union = (a_right - a_left) * (a_bottom - a_top) + (b_right - b_left) * (b_bottom - b_top) - intersection
    return intersection / union if union > 0 else 0.0

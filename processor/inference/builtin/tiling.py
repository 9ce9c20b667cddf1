"""Tiles for finding far (small) objects, and the merge of what the whole frame and its tiles found.

A 1080p frame letterboxed to a 416 px network shrinks a far person to a few pixels; 640 px tiles shrink it ~3x less.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from processor.frames import Box

Window = tuple[int, int, int, int]
"""x, y, width, height of a tile in the frame's pixels."""


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    """Tile starts along one side: the fewest tiles that overlap by at least ``overlap``, spread evenly."""
    if length <= tile:
        return [0]
    step = tile * (1.0 - overlap)
    count = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_windows(width: int, height: int, tile: int, overlap: float = 0.2) -> list[Window]:
    """The ``tile`` x ``tile`` windows covering a frame (a side shorter than a tile gives one row or column);
    none when the whole frame fits in one tile."""
    if width <= tile and height <= tile:
        return []
    return [
        (x, y, min(tile, width), min(tile, height))
        for y in _starts(height, tile, overlap)
        for x in _starts(width, tile, overlap)
    ]


def _area(box: Box) -> float:
    return max(0.0, box.right - box.left) * max(0.0, box.bottom - box.top)


def _inside_fraction(small: Box, large: Box) -> float:
    width = min(small.right, large.right) - max(small.left, large.left)
    height = min(small.bottom, large.bottom) - max(small.top, large.top)
    area = _area(small)
    return max(0.0, width) * max(0.0, height) / area if area > 0 else 1.0


def containment_merge(boxes: Iterable[Box], min_inside: float = 0.7) -> list[Box]:
    """Boxes where each box lying ``min_inside`` (of its area) or more inside a larger box of the same label is
    merged into it: the larger box grows to cover both and keeps the higher confidence.

    Tiles cut large objects into fragments that overlap the whole object's box too little for NMS but lie inside
    it; merging (rather than dropping) keeps every hidden pixel hidden. Largest first in the result.
    """
    kept: list[Box] = []
    for box in sorted(boxes, key=_area, reverse=True):
        for index, large in enumerate(kept):
            if large.label == box.label and _inside_fraction(box, large) >= min_inside:
                kept[index] = Box(
                    min(large.left, box.left),
                    min(large.top, box.top),
                    max(large.right, box.right),
                    max(large.bottom, box.bottom),
                    large.label,
                    max(large.confidence, box.confidence),
                )
                break
        else:
            kept.append(box)
    return kept

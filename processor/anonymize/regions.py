"""Which pixels to hide and hiding them: boxes (clamped, scaled, optionally elliptic) and mask regions.

A box is normalised (left > right or top > bottom swapped), grown about its centre by ``scale``, rounded
outward (every pixel it touches is covered; right and bottom are exclusive) and clamped to the image; an empty,
zero-size or non-finite box is skipped, never an error. With ``ellipse`` only the pixels touching the ellipse
inscribed in the scaled box change, and the technique still sees the whole rectangle.

A mask region is one outer outline of the mask (8-connected) with everything inside it, so an island in a hole
belongs to the region around it. Size-relative techniques (blurring, pixelating) see the region's bounding box,
and only the region's own pixels change.

Every region is hidden exactly once, from the original pixels: regions whose rectangles meet are all read before
any of them is written, so where boxes overlap nothing is blurred twice. In an overlap the larger region, hidden at
least as strongly in absolute terms, is written last and wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from processor.anonymize.registry import Technique, get_technique
from processor.errors import InvalidConfiguration
from processor.frames import BgrImage, BoolMask, Box

Edges = tuple[float, float, float, float]

_MAX_PAIRS_CHECKED = 1024  # regions; beyond, every region is treated as overlapping (n x n booleans otherwise)


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle of the image (right and bottom exclusive) and, optionally, which of its pixels to change."""

    left: int
    top: int
    right: int
    bottom: int
    select: BoolMask | None = None  # (bottom - top) x (right - left); None: the whole rectangle

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    @property
    def area(self) -> int:
        return (self.right - self.left) * (self.bottom - self.top)


def apply_boxes(
    image: BgrImage,
    boxes: Sequence[Box],
    technique: str,
    degree: float,
    *,
    scale: float = 1.0,
    ellipse: bool = False,
) -> int:
    """Hide each box in place; returns how many were hidden (not empty after clamping).

    Raises InvalidConfiguration for an unknown technique or a degree outside [0, 1], ValueError for a scale
    that is not a positive number; never for a box.
    """
    kernel = _technique(technique, degree)
    if not (math.isfinite(scale) and scale > 0.0):
        raise ValueError(f"box scale must be a positive number, not {scale}")
    height, width = image.shape[:2]
    regions = [r for box in boxes if (r := box_region(box, width, height, scale=scale, ellipse=ellipse)) is not None]
    return _hide(image, regions, kernel, degree)


def apply_mask(image: BgrImage, mask: BoolMask, technique: str, degree: float) -> int:
    """Hide the mask's pixels in place; returns the number of regions (outer outlines) hidden.

    Raises InvalidConfiguration as :func:`apply_boxes`, ValueError if the mask's shape is not the image's.
    """
    kernel = _technique(technique, degree)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")
    return _hide(image, mask_regions(mask), kernel, degree)


def clamp_box(box: Box, width: int, height: int, *, scale: float = 1.0) -> tuple[int, int, int, int] | None:
    """The pixels a box covers as (left, top, right, bottom), right/bottom exclusive; None if nothing is left."""
    edges = _scaled_edges(box, scale)
    return None if edges is None else _clamp(edges, width, height)


def box_region(box: Box, width: int, height: int, *, scale: float = 1.0, ellipse: bool = False) -> Region | None:
    edges = _scaled_edges(box, scale)
    clamped = None if edges is None else _clamp(edges, width, height)
    if edges is None or clamped is None:
        return None
    left, top, right, bottom = clamped
    if not ellipse:
        return Region(left, top, right, bottom)
    select = _ellipse_pixels(edges, clamped)
    return Region(left, top, right, bottom, select) if select.any() else None


def mask_regions(mask: BoolMask) -> list[Region]:
    """One region per outer outline of the mask, in the order OpenCV finds them."""
    binary = np.ascontiguousarray(mask, dtype=np.bool_).view(np.uint8)
    if not binary.any():
        return []
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rectangles = [cv2.boundingRect(contour) for contour in contours]
    shared = _overlapping([Region(x, y, x + w, y + h) for x, y, w, h in rectangles])
    regions = []
    for contour, (left, top, width, height), crowded in zip(contours, rectangles, shared, strict=True):
        inside = binary[top : top + height, left : left + width]
        if crowded:  # other regions reach into this bounding box: keep only this region's own pixels
            outline = np.zeros((height, width), np.uint8)
            cv2.drawContours(outline, [contour], 0, 1, thickness=cv2.FILLED, offset=(-left, -top))
            cv2.bitwise_and(outline, inside, dst=outline)
            inside = outline
        regions.append(Region(left, top, left + width, top + height, inside.view(np.bool_)))
    return regions


def _technique(name: str, degree: float) -> Technique:
    technique = get_technique(name)
    if not 0.0 <= degree <= 1.0:
        raise InvalidConfiguration([f"anonymization degree {degree} is outside [0, 1]"])
    return technique


def _scaled_edges(box: Box, scale: float) -> Edges | None:
    """The box normalised and grown about its centre, in float pixels; None if zero-size or not finite."""
    left, right = sorted((box.left, box.right))
    top, bottom = sorted((box.top, box.bottom))
    half_width, half_height = (right / 2 - left / 2) * scale, (bottom / 2 - top / 2) * scale  # halves: no overflow
    centre_x, centre_y = left / 2 + right / 2, top / 2 + bottom / 2
    edges = (centre_x - half_width, centre_y - half_height, centre_x + half_width, centre_y + half_height)
    if not all(map(math.isfinite, edges)) or edges[0] >= edges[2] or edges[1] >= edges[3]:
        return None
    return edges


def _clamp(edges: Edges, width: int, height: int) -> tuple[int, int, int, int] | None:
    left, top = max(math.floor(edges[0]), 0), max(math.floor(edges[1]), 0)
    right, bottom = min(math.ceil(edges[2]), width), min(math.ceil(edges[3]), height)
    return (left, top, right, bottom) if left < right and top < bottom else None


def _ellipse_pixels(edges: Edges, clamped: tuple[int, int, int, int]) -> BoolMask:
    """Pixels of the clamped rectangle that touch the ellipse inscribed in ``edges`` (rounding outward, as boxes)."""
    centre_x, centre_y = (edges[0] + edges[2]) / 2, (edges[1] + edges[3]) / 2
    semi_x, semi_y = (edges[2] - edges[0]) / 2, (edges[3] - edges[1]) / 2
    left, top, right, bottom = clamped
    xs, ys = np.arange(left, right, dtype=np.float64), np.arange(top, bottom, dtype=np.float64)
    # The point of each pixel square nearest to the centre, in units of the semi-axes.
    with np.errstate(over="ignore"):
        dx = ((np.clip(centre_x, xs, xs + 1) - centre_x) / semi_x) ** 2
        dy = ((np.clip(centre_y, ys, ys + 1) - centre_y) / semi_y) ** 2
    return np.asarray(dy[:, None] + dx[None, :] <= 1.0)


def _hide(image: BgrImage, regions: list[Region], technique: Technique, degree: float) -> int:
    """Hide every region once, from the original pixels: a region whose rectangle meets another's is written only
    after all are read; if holding those results would take more than a frame, one snapshot of the frame is read
    instead. A rectangle hidden whole is handed to the technique writable (it may work in place), any other patch
    read-only (see :mod:`processor.anonymize.registry`)."""
    regions = sorted(regions, key=lambda region: region.area)  # the larger wins overlaps (see module docstring)
    deferred = _overlapping(regions)
    source = image
    held = sum(region.area for region, later in zip(regions, deferred, strict=True) if later)
    if held > image.shape[0] * image.shape[1]:
        source, deferred = image.copy(), np.zeros_like(deferred)
    in_place = source is image and image.flags.writeable and _opencv_layout(image)
    pending = []
    for region, later in zip(regions, deferred, strict=True):
        patch = source[region.window]
        patch.flags.writeable = in_place and region.select is None and not later
        hidden = technique(patch, degree)
        if hidden is patch:  # written in place, or unchanged
            continue
        if hidden.shape != patch.shape or hidden.dtype != patch.dtype:
            raise ValueError(f"technique returned {hidden.dtype}{hidden.shape} for a {patch.dtype}{patch.shape} patch")
        if np.may_share_memory(hidden, image):  # a view of the frame, e.g. a mirror: detach it before writing
            hidden = hidden.copy()
        if later:
            pending.append((region, hidden))
        else:
            _write(image[region.window], hidden, region.select)
    for region, hidden in pending:
        _write(image[region.window], hidden, region.select)
    return len(regions)


def _overlapping(regions: Sequence[Region]) -> npt.NDArray[np.bool_]:
    """For each region, whether its rectangle meets another region's (all True past a limit: n x n pairs)."""
    if len(regions) > _MAX_PAIRS_CHECKED:
        return np.ones(len(regions), np.bool_)
    left, top, right, bottom = np.array([(r.left, r.top, r.right, r.bottom) for r in regions]).reshape(-1, 4).T
    meets = (left[:, None] < right) & (left < right[:, None]) & (top[:, None] < bottom) & (top < bottom[:, None])
    np.fill_diagonal(meets, False)
    return np.asarray(meets.any(axis=1))


def _write(target: BgrImage, hidden: BgrImage, select: BoolMask | None) -> None:
    if select is None:
        target[...] = hidden
    elif _opencv_layout(target):
        cv2.copyTo(hidden, select.view(np.uint8), target)
    else:
        np.copyto(target, hidden, where=select[..., None])


def _opencv_layout(image: BgrImage) -> bool:
    """Whether OpenCV can write into ``image`` in place (not e.g. an RGB array seen as BGR through a reversed view)."""
    return image.strides[0] > 0 and image.strides[1:] == (image.shape[2], 1)

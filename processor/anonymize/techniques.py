"""The built-in anonymization kernels: ``(patch, degree) -> patch``, pure numpy/OpenCV.

A patch is the HxWx3 uint8 crop of one region (a box, or the bounding box of one mask region), a read-only view
of the frame: these kernels never change it and return a new array (or the patch itself when nothing changes), so
the frame is read without a copy. The degree ``d`` is in [0, 1]; for every built-in technique ``d = 0`` leaves the
patch unchanged and ``d = 1`` hides the most.

- ``blackening``: ``out = round(in * (1 - d))``: exactly 0 at ``d = 1``, exactly the input at ``d = 0``.
- ``pixelating``: ``n = int(1 / d)`` cells per axis (at most one per pixel); each cell takes the mean colour of the
  pixels it covers (area resampling) and is scaled back with nearest neighbour: ``d > 0.5`` gives one colour,
  ``d = 0.25`` a 4x4 grid. (The original crashed at ``d = 0``; here it means unchanged.)
- ``blurring``: a Gaussian with ``sigma = d * 0.15 * min(H, W)`` pixels, relative to the patch, so that one degree
  hides a 40-px and a 400-px face alike (the original used ``sigma = 25 * d`` px whatever the size, so a 400-px
  face at 4K stayed recognisable). At ``d = 1`` eyes, mouth and glasses are gone at any face size.
  Large sigmas are computed fast: halve the patch ``k`` times (2x2 means), blur the small image with
  ``sigma_k = sqrt((sigma / 2**k)**2 - 1/4)`` and scale back bilinearly. The resampling adds a variance of about
  ``(2**k)**2 / 4`` px^2, which ``sigma_k`` takes off; ``k`` is the largest with ``sigma_k >= 3`` and at least 4 px
  left on the short side. Against a direct Gaussian the mean error is 0.2-1.8 grey levels (measured on photos,
  patches of 70-1900 px).
- ``filling``: ``out = round(in * (1 - d) + m * d)`` with ``m`` the patch's mean colour (rounded): one flat colour
  at ``d = 1``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from processor.inference.base import BgrImage

BLUR_SIGMA_PER_SIZE = 0.15
"""Blur sigma at d = 1 as a fraction of the patch's short side; checked by eye on real faces at 40 and 400 px."""

_SMALL_SIGMA = 3.0  # the Gaussian run on the reduced image is at least this wide: accuracy of the shortcut
_MIN_REDUCED_SIDE = 4  # pixels the reduced image keeps on its short side, at least


def blacken(patch: BgrImage, degree: float) -> BgrImage:
    return _image(cv2.convertScaleAbs(patch, alpha=1.0 - degree))


def pixelate(patch: BgrImage, degree: float) -> BgrImage:
    height, width = patch.shape[:2]
    if degree * max(height, width) <= 1.0:  # a cell per pixel (or finer): unchanged, and no 1/0 at d = 0
        return patch
    rows, columns = min(int(1.0 / degree), height), min(int(1.0 / degree), width)
    if rows == columns == 1:
        return _paint(np.empty_like(patch), _mean(patch))
    # INTER_AREA is slow on large reductions: halve first, while a cell keeps at least 8 pixels a side.
    covered, small = _reduce(patch, max(0, math.floor(math.log2(min(height / rows, width / columns) / 8))))
    cells = cv2.resize(small, (columns, rows), interpolation=cv2.INTER_AREA)
    return _expand(_image(cells), covered, patch.shape, cv2.INTER_NEAREST)


def blur(patch: BgrImage, degree: float) -> BgrImage:
    height, width = patch.shape[:2]
    sigma = degree * BLUR_SIGMA_PER_SIZE * min(height, width)
    if sigma <= 0.0:
        return patch
    # The most halvings k with sigma_k >= _SMALL_SIGMA (see the module docstring) and 4 px left on the short side.
    by_sigma = math.log2(sigma / math.hypot(_SMALL_SIGMA, 0.5))
    by_size = math.log2(max(min(height, width), 1) / _MIN_REDUCED_SIDE)
    halvings = max(0, math.floor(min(by_sigma, by_size)))
    if halvings == 0:
        return _gaussian(patch, sigma)
    covered, small = _reduce(patch, halvings)
    blurred = _gaussian(small, math.sqrt((sigma / 2**halvings) ** 2 - 0.25))
    return _expand(blurred, covered, patch.shape, cv2.INTER_LINEAR)


def fill(patch: BgrImage, degree: float) -> BgrImage:
    solid = _paint(np.empty_like(patch), _mean(patch))
    if degree < 1.0:
        cv2.addWeighted(patch, 1.0 - degree, solid, degree, 0.0, dst=solid)
    return solid


def _reduce(image: BgrImage, halvings: int) -> tuple[tuple[int, int], BgrImage]:
    """Halve ``halvings`` times with 2x2 means; returns the (height, width) of the part of ``image`` represented.

    The first, costly step leaves out an odd last row or column, which keeps OpenCV on its fast path (twice as
    fast); the next ones round up (bilinear), which keeps the alignment.
    """
    if halvings <= 0:
        return image.shape[:2], image
    half_height, half_width = image.shape[0] // 2, image.shape[1] // 2
    even = image[: 2 * half_height, : 2 * half_width]
    small = _image(cv2.resize(even, (half_width, half_height), interpolation=cv2.INTER_AREA))
    for _ in range(halvings - 1):
        half = ((small.shape[1] + 1) // 2, (small.shape[0] + 1) // 2)
        small = _image(cv2.resize(small, half, interpolation=cv2.INTER_LINEAR))
    return even.shape[:2], small


def _expand(small: BgrImage, covered: tuple[int, int], shape: tuple[int, ...], interpolation: int) -> BgrImage:
    """Scale ``small`` back onto the ``covered`` part of a patch of ``shape`` and repeat its edge over the rest."""
    height, width = covered
    expanded = np.empty(shape, np.uint8)
    part = expanded[:height, :width]
    cv2.resize(small, (width, height), dst=part, interpolation=interpolation)
    expanded[height:, :width] = part[-1:]
    expanded[:, width:] = expanded[:, width - 1 : width]
    return expanded


def _gaussian(image: BgrImage, sigma: float) -> BgrImage:
    # sepFilter2D with an explicit kernel: GaussianBlur costs ~150 us of set-up per call here, whatever the size.
    kernel = cv2.getGaussianKernel(2 * max(1, math.ceil(3.0 * sigma)) + 1, sigma)
    return _image(cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101))


def _mean(patch: BgrImage) -> tuple[int, ...]:
    # sumElems, not cv2.mean: the latter costs ~150 us per call here, whatever the size.
    pixels = patch.shape[0] * patch.shape[1]
    return tuple(round(total / pixels) for total in cv2.sumElems(patch)[: patch.shape[2]])


def _paint(image: BgrImage, colour: tuple[int, ...]) -> BgrImage:
    cv2.rectangle(image, (0, 0), (image.shape[1] - 1, image.shape[0] - 1), colour, thickness=cv2.FILLED)
    return image


def _image(array: object) -> BgrImage:
    """OpenCV's results as the uint8 arrays they are (no copy), for the type checker."""
    return np.asarray(array, dtype=np.uint8)

"""The built-in anonymization kernels: ``(patch, degree) -> patch``, pure numpy/OpenCV.

A patch is the HxWx3 uint8 crop of one region (a box, or the bounding box of one mask region); a kernel changes
it in place and returns it. The degree ``d`` is in [0, 1]; for every built-in technique ``d = 0`` leaves the
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
  ``(2**k)**2 / 4`` px^2, which ``sigma_k`` takes off, so the result is a Gaussian of ``sigma`` to within 1-2 grey
  levels on average; ``k`` is the largest with ``sigma_k >= 2`` and at least 4 px left on the short side.
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

_SMALL_SIGMA = 2.0  # the Gaussian run on the reduced image is at least this wide: accuracy of the shortcut
_MIN_REDUCED_SIDE = 4  # pixels the reduced image keeps on its short side, at least


def blacken(patch: BgrImage, degree: float) -> BgrImage:
    cv2.convertScaleAbs(patch, dst=patch, alpha=1.0 - degree)
    return patch


def pixelate(patch: BgrImage, degree: float) -> BgrImage:
    height, width = patch.shape[:2]
    if degree * max(height, width) <= 1.0:  # a cell per pixel (or finer): unchanged, and no 1/0 at d = 0
        return patch
    cells = int(1.0 / degree)
    if cells == 1:
        return _paint(patch, _mean(patch))
    small = cv2.resize(patch, (min(cells, width), min(cells, height)), interpolation=cv2.INTER_AREA)
    cv2.resize(small, (width, height), dst=patch, interpolation=cv2.INTER_NEAREST)
    return patch


def blur(patch: BgrImage, degree: float) -> BgrImage:
    height, width = patch.shape[:2]
    sigma = degree * BLUR_SIGMA_PER_SIZE * min(height, width)
    if sigma <= 0.0:
        return patch
    # Halvings k such that sigma / 2**k >= hypot(2, 1/2) (so sigma_k >= 2) and the short side keeps 4 px.
    by_sigma = math.log2(sigma / math.hypot(_SMALL_SIGMA, 0.5))
    by_size = math.log2(max(min(height, width), 1) / _MIN_REDUCED_SIDE)
    halvings = max(0, math.floor(min(by_sigma, by_size)))
    if halvings == 0:
        patch[...] = _gaussian(patch, sigma)
        return patch
    small = patch
    for _ in range(halvings):
        # Bilinear at half size averages 2x2 blocks: the box filter of INTER_AREA, several times faster.
        half_size = ((small.shape[1] + 1) // 2, (small.shape[0] + 1) // 2)
        small = np.asarray(cv2.resize(small, half_size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    small = _gaussian(small, math.sqrt((sigma / 2**halvings) ** 2 - 0.25))
    cv2.resize(small, (width, height), dst=patch, interpolation=cv2.INTER_LINEAR)
    return patch


def fill(patch: BgrImage, degree: float) -> BgrImage:
    mean = _mean(patch)
    if degree >= 1.0:
        return _paint(patch, mean)
    solid = _paint(np.empty_like(patch), mean)
    cv2.addWeighted(patch, 1.0 - degree, solid, degree, 0.0, dst=patch)
    return patch


def _gaussian(image: BgrImage, sigma: float) -> BgrImage:
    # sepFilter2D with an explicit kernel: GaussianBlur costs ~150 us of set-up per call here, whatever the size.
    kernel = cv2.getGaussianKernel(2 * max(1, math.ceil(3.0 * sigma)) + 1, sigma)
    return np.asarray(cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101), dtype=np.uint8)


def _mean(patch: BgrImage) -> tuple[int, ...]:
    # sumElems, not cv2.mean: the latter costs ~150 us per call here, whatever the size.
    pixels = patch.shape[0] * patch.shape[1]
    return tuple(round(total / pixels) for total in cv2.sumElems(patch)[: patch.shape[2]])


def _paint(patch: BgrImage, colour: tuple[int, ...]) -> BgrImage:
    cv2.rectangle(patch, (0, 0), (patch.shape[1] - 1, patch.shape[0] - 1), colour, thickness=cv2.FILLED)
    return patch

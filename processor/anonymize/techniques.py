"""The built-in anonymization kernels: ``(patch, degree) -> patch``, pure numpy/OpenCV.

A patch is the HxWx3 uint8 view of the frame under one region (a box, or the bounding box of one mask region).
When the whole patch is to be hidden the engine passes it writable, and these kernels write their result into it
and return it; otherwise (an ellipse, a mask, overlapping boxes) it is read-only and they return a new array. The
frame is never copied. The degree ``d`` is in [0, 1]; for every built-in technique ``d = 0`` leaves the patch
unchanged and ``d = 1`` hides the most.

- ``blackening``: ``out = round(in * (1 - d))``: exactly 0 at ``d = 1``, exactly the input at ``d = 0``.
- ``pixelating``: ``n = int(1 / d)`` cells per axis (at most one per pixel); each cell takes the mean colour of the
  pixels it covers (area resampling) and is scaled back with nearest neighbour: ``d > 0.5`` gives one colour,
  ``d = 0.25`` a 4x4 grid. (The original crashed at ``d = 0``; here it means unchanged.)
- ``blurring``: a Gaussian with ``sigma = d * 0.15 * min(H, W)`` pixels, relative to the patch, so that one degree
  hides a 40-px and a 400-px face alike (the original used ``sigma = 25 * d`` px whatever the size, so a 400-px
  face at 4K stayed recognisable). At ``d = 1`` eyes, mouth and glasses are gone at any face size.
  Large sigmas are computed fast: reduce the patch ``k`` halvings (2x2 means), blur the small image with
  ``sigma_k = sqrt((sigma / 2**k)**2 - 1/4)`` and scale back bilinearly. The resampling adds a variance of about
  ``(2**k)**2 / 4`` px^2, which ``sigma_k`` takes off; ``k`` is the largest with ``sigma_k >= 3`` and at least 4 px
  left on the short side. Against a direct Gaussian of ``sigma`` the mean error is 1-3 grey levels (photos,
  patches of 70-1900 px).
- ``filling``: ``out = round(in * (1 - d) + m * d)`` with ``m`` the patch's mean colour (rounded): one flat colour
  at ``d = 1``.
- ``solid:RRGGBB``: as ``filling`` with the colour given in hex (``solid:ffffff`` is white at ``d = 1``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from processor.frames import BgrImage

BLUR_SIGMA_PER_SIZE = 0.15
"""Blur sigma at d = 1 as a fraction of the patch's short side; checked by eye on real faces at 40 and 400 px."""

_SMALL_SIGMA = 3.0  # the Gaussian run on the reduced image is at least this wide: accuracy of the shortcut
_MIN_REDUCED_SIDE = 4  # pixels the reduced image keeps on its short side, at least


def blacken(patch: BgrImage, degree: float) -> BgrImage:
    out = _output(patch)
    cv2.convertScaleAbs(patch, dst=out, alpha=1.0 - degree)
    return out


def pixelate(patch: BgrImage, degree: float) -> BgrImage:
    height, width = patch.shape[:2]
    if degree * max(height, width) <= 1.0:  # a cell per pixel (or finer): unchanged, and no 1/0 at d = 0
        return patch
    rows, columns = min(int(1.0 / degree), height), min(int(1.0 / degree), width)
    if rows == columns == 1:
        return _paint(_output(patch), _mean(patch))
    # INTER_AREA is slow on large reductions: halve first, while a cell keeps at least 8 pixels a side.
    covered, small = _reduce(patch, max(0, math.floor(math.log2(min(height / rows, width / columns) / 8))))
    cells = _image(cv2.resize(small, (columns, rows), interpolation=cv2.INTER_AREA))
    return _expand(cells, covered, _output(patch), cv2.INTER_NEAREST)


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
        return _gaussian(patch, sigma, _output(patch))
    covered, small = _reduce(patch, halvings)
    blurred = _gaussian(small, math.sqrt((sigma / 2**halvings) ** 2 - 0.25), np.empty_like(small))
    return _expand(blurred, covered, _output(patch), cv2.INTER_LINEAR)


def fill(patch: BgrImage, degree: float) -> BgrImage:
    blue, green, red = _mean(patch)
    return paint(patch, degree, (blue, green, red))


def paint(patch: BgrImage, degree: float, colour: tuple[int, int, int]) -> BgrImage:
    """``out = round(in * (1 - d) + colour * d)``; ``colour`` in BGR order."""
    out = _output(patch)
    if degree >= 1.0:
        return _paint(out, colour)
    solid = _paint(np.empty_like(patch), colour)
    cv2.addWeighted(patch, 1.0 - degree, solid, degree, 0.0, dst=out)
    return out


def _output(patch: BgrImage) -> BgrImage:
    """Where a kernel writes: the patch itself if the engine lets it, else a new array (all inputs read first)."""
    return patch if patch.flags.writeable else np.empty_like(patch)


def _reduce(image: BgrImage, halvings: int) -> tuple[tuple[int, int], BgrImage]:
    """Halve ``halvings`` times; returns the (height, width) of the part of ``image`` represented, and the result.

    The first step, the costly one at full size, leaves out the last odd rows and columns so that OpenCV stays on
    its fast paths: one halving averages 2x2 blocks; two or more start by taking the mean of the centre 2x2 pixels
    of each 4x4 block, which reads half the rows (the step is memory-bound) and lets through aliasing far weaker
    than the blur that follows. The next steps average 2x2 blocks, rounding up (bilinear).
    """
    if halvings <= 0:
        return image.shape[:2], image
    step = 4 if halvings >= 2 else 2
    height, width = image.shape[0] // step, image.shape[1] // step
    part = image[: step * height, : step * width]
    interpolation = cv2.INTER_LINEAR if step == 4 else cv2.INTER_AREA
    small = _image(cv2.resize(part, (width, height), interpolation=interpolation))
    for _ in range(halvings - step // 2):
        half = ((small.shape[1] + 1) // 2, (small.shape[0] + 1) // 2)
        small = _image(cv2.resize(small, half, interpolation=cv2.INTER_LINEAR))
    return part.shape[:2], small


def _expand(small: BgrImage, covered: tuple[int, int], out: BgrImage, interpolation: int) -> BgrImage:
    """Scale ``small`` back onto the ``covered`` part of ``out`` and repeat its edge over the rest."""
    height, width = covered
    part = out[:height, :width]
    cv2.resize(small, (width, height), dst=part, interpolation=interpolation)
    out[height:, :width] = part[-1:]
    out[:, width:] = out[:, width - 1 : width]
    return out


def _gaussian(image: BgrImage, sigma: float, out: BgrImage) -> BgrImage:
    # sepFilter2D with an explicit kernel: GaussianBlur costs ~150 us of set-up per call here, whatever the size.
    kernel = cv2.getGaussianKernel(2 * max(1, math.ceil(3.0 * sigma)) + 1, sigma)
    cv2.sepFilter2D(image, -1, kernel, kernel, dst=out, borderType=cv2.BORDER_REFLECT_101)
    return out


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

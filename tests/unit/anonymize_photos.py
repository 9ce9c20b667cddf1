"""Real public-domain photos and their face boxes (checked by eye), for the anonymization tests."""

from __future__ import annotations

import functools

import cv2
import numpy as np
from matplotlib import cbook
from skimage import data

from processor.inference.base import BgrImage

ASTRONAUT_FACE = (180, 58, 270, 178)
"""left, top, right, bottom (exclusive) of the face in :func:`astronaut`."""

GRACE_HOPPER_FACE = (175, 131, 357, 336)
"""left, top, right, bottom (exclusive) of the face in :func:`grace_hopper`."""


@functools.cache
def _astronaut() -> BgrImage:
    return np.ascontiguousarray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


@functools.cache
def _grace_hopper() -> BgrImage:
    image = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def astronaut() -> BgrImage:
    """NASA portrait (scikit-image), 512x512 BGR; a fresh copy each call."""
    return _astronaut().copy()


def grace_hopper() -> BgrImage:
    """US Navy portrait (matplotlib sample data), 600x512 BGR; a fresh copy each call."""
    return _grace_hopper().copy()


def face_crop(photo: str, size: int) -> BgrImage:
    """The face of ``photo`` ("astronaut" or "grace_hopper") resized to a long side of ``size`` px, read-only."""
    image, (left, top, right, bottom) = {
        "astronaut": (_astronaut(), ASTRONAUT_FACE),
        "grace_hopper": (_grace_hopper(), GRACE_HOPPER_FACE),
    }[photo]
    crop = image[top:bottom, left:right]
    scale = size / max(crop.shape[:2])
    shape = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = np.ascontiguousarray(cv2.resize(crop, shape, interpolation=interpolation))
    resized.flags.writeable = False
    return resized

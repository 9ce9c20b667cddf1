"""Synthetic test frames made of real public-domain photos: a crowd of pasted faces with their true boxes."""

from __future__ import annotations

import functools

import cv2
import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import skimage.data

from processor.bench.scenes import ASTRONAUT_FACE, GRACE_HOPPER_FACE, Head, crowd_frame
from processor.bench.scenes import heads as scene_heads

BgrImage = npt.NDArray[np.uint8]

__all__ = [
    "ASTRONAUT_FACE",
    "GRACE_HOPPER_FACE",
    "Head",
    "astronaut",
    "compose_crowd_frame",
    "face_crop",
    "grace_hopper",
    "heads",
]


@functools.cache
def _astronaut() -> BgrImage:
    return np.ascontiguousarray(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))


@functools.cache
def _grace_hopper() -> BgrImage:
    image = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def astronaut() -> BgrImage:
    """skimage's astronaut (NASA, public domain), BGR, 512x512; one face; a fresh copy each call."""
    return _astronaut().copy()


def grace_hopper() -> BgrImage:
    """matplotlib's grace_hopper.jpg (US Navy, public domain), BGR, 600x512 (HxW); one face; a fresh copy."""
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


def heads() -> list[Head]:
    """The two heads of the original photos (not the bundled re-encoded samples)."""
    return scene_heads(astronaut(), grace_hopper())


def compose_crowd_frame(
    face_heights: list[int], size: tuple[int, int] = (1920, 1080), seed: int = 0
) -> tuple[BgrImage, list[tuple[float, float, float, float]]]:
    """A ``size`` (W, H) frame: skimage's coffee photo as background, then one head per entry of ``face_heights``
    (see :func:`processor.bench.scenes.crowd_frame`). Returns the frame and the true face boxes (x1, y1, x2, y2)."""
    background = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)
    return crowd_frame(face_heights, size, background=background, sources=heads(), seed=seed)


def render_plate(width: int) -> BgrImage:
    """A plate-like image drawn with OpenCV: black "A123BC | 77" on white, Russian proportions (520:112 mm)."""
    height = round(width * 112 / 520)
    plate = np.full((height, width, 3), 255, np.uint8)
    cv2.rectangle(plate, (1, 1), (width - 2, height - 2), (0, 0, 0), max(1, width // 100))
    size = height / 40
    text_origin = (round(width * 0.05), round(height * 0.8))
    cv2.putText(plate, "A123BC", text_origin, cv2.FONT_HERSHEY_SIMPLEX, size * 0.95, (0, 0, 0), max(1, int(size * 2.2)))
    divider = round(width * 0.75)
    cv2.line(plate, (divider, 0), (divider, height), (0, 0, 0), max(1, width // 150))
    region_origin = (round(width * 0.79), round(height * 0.6))
    cv2.putText(plate, "77", region_origin, cv2.FONT_HERSHEY_SIMPLEX, size * 0.6, (0, 0, 0), max(1, int(size * 1.5)))
    return plate


def compose_plate_frame(
    plate_widths: list[int], size: tuple[int, int] = (1920, 1080)
) -> tuple[BgrImage, list[tuple[float, float, float, float]]]:
    """A ``size`` (W, H) frame of skimage's coffee photo with one rendered plate per width, in a row near the
    bottom. Returns the frame and the plate boxes (x1, y1, x2, y2)."""
    width, height = size
    frame = cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (width, height))
    plates: list[tuple[float, float, float, float]] = []
    x, top = 40, round(height * 0.8)
    for plate_width in plate_widths:
        plate = render_plate(plate_width)
        plate_height = plate.shape[0]
        if x + plate_width > width or top + plate_height > height:
            raise ValueError(f"plates of widths {plate_widths} do not fit in {width}x{height}")
        frame[top : top + plate_height, x : x + plate_width] = plate
        plates.append((x, top, x + plate_width, top + plate_height))
        x += plate_width + 60
    return frame, plates

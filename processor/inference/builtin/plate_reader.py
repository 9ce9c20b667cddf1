"""Licence plates read as text: vehicle crops -> PP-OCRv4 text boxes -> recogniser -> a plate rule.

Every vehicle box (+5 % per side) is cut out and scaled to a 640 px long side (at most x8: a plate 20 px wide in a
car 80 px wide is read at 160 px), so that plates of far vehicles get enough pixels; text boxes found there are
read, and kept when the text looks like a plate. Privacy first: a text box the recogniser cannot read (fewer than
4 letters/digits: blur, glare, distance) is still hidden when it is shaped like a plate and sits in the lower part
of a vehicle. Without vehicle boxes the whole frame is one crop and only readable plates count (the position rule
needs a vehicle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from processor.frames import BgrImage, Box
from processor.inference.builtin.text_detector import Quad, TextDetector
from processor.inference.builtin.text_recognizer import TextRecognizer

LABEL = "license_plate"
CROP_MARGIN = 0.05  # of the vehicle box's width/height, on each side
CROP_LONG_SIDE = 640  # the default; builtin.plate_crop_side
MAX_UPSCALE = 8.0
PLATE_ASPECT = (1.5, 7.0)  # long/short side of an unreadable text box that may be a plate
PLATE_LOWER_FROM = 0.35  # an unreadable plate-shaped box counts when its centre is below this share of the vehicle
_SEPARATORS = " -.·:"  # plate text separators, not counted as characters
PLATE_PAD = (0.5, 0.25)  # a text box grows by these shares of its text height, across and up/down, to the plate's rim


def looks_like_plate(text: str) -> bool:
    """4-10 ASCII letters/digits, at least 1 digit (the recogniser reads a plate's 0 as O: "GN06 BGV" came out
    "GNO6BG"), and at least 75 % of the other characters letters/digits."""
    chars = [c for c in text if c not in _SEPARATORS]
    alnum = [c for c in chars if c.isascii() and c.isalnum()]
    digits = sum(c.isdigit() for c in alnum)
    return 4 <= len(alnum) <= 10 and digits >= 1 and len(alnum) >= 0.75 * len(chars)


def readable(text: str) -> bool:
    """Whether the recogniser read enough to judge the text (4 or more letters/digits)."""
    return sum(c.isascii() and c.isalnum() for c in text) >= 4


def plate_shaped(quad: Quad, crop_height: int) -> bool:
    """A text box with a plate's aspect ratio, centred in the lower part of its vehicle crop."""
    (_, cy), (w, h), _ = cv2.minAreaRect(quad.astype(np.float32))
    short, long = sorted((w, h))
    return short > 0 and PLATE_ASPECT[0] <= long / short <= PLATE_ASPECT[1] and cy >= PLATE_LOWER_FROM * crop_height


@dataclass(frozen=True, slots=True)
class Crop:
    """A region of the frame and the factor it is scaled by before detection."""

    left: int
    top: int
    right: int
    bottom: int
    scale: float

    def plate_box(self, quad: Quad) -> Box:
        """The frame box of the plate around text ``quad``: the text box grown to the plate's rim (text boxes
        hug the characters; the rim and any unread line around them are part of the plate), clipped to the crop."""
        text_height = min(cv2.minAreaRect(quad.astype(np.float32))[1])
        (left, top), (right, bottom) = quad.min(axis=0), quad.max(axis=0)
        pad_x, pad_y = PLATE_PAD[0] * text_height, PLATE_PAD[1] * text_height
        left, top, right, bottom = left - pad_x, top - pad_y, right + pad_x, bottom + pad_y
        return self.to_frame(np.array([[left, top], [right, top], [right, bottom], [left, bottom]]))

    def to_frame(self, quad: Quad) -> Box:
        """The frame box around ``quad`` (corners in the scaled crop's pixels), clipped to the crop."""
        xs = quad[:, 0] / self.scale + self.left
        ys = quad[:, 1] / self.scale + self.top
        return Box(
            float(max(self.left, xs.min())),
            float(max(self.top, ys.min())),
            float(min(self.right, xs.max())),
            float(min(self.bottom, ys.max())),
            LABEL,
        )


def plan_crop(box: Box, frame_width: int, frame_height: int, long_side: int = CROP_LONG_SIDE) -> Crop | None:
    """The crop for one vehicle box: +5 % per side, clipped to the frame, scaled to a ``long_side`` px long side
    (at most x8). None when nothing of the box is inside the frame."""
    dx, dy = (box.right - box.left) * CROP_MARGIN, (box.bottom - box.top) * CROP_MARGIN
    left, top = max(0, int(box.left - dx)), max(0, int(box.top - dy))
    right, bottom = min(frame_width, int(np.ceil(box.right + dx))), min(frame_height, int(np.ceil(box.bottom + dy)))
    if right - left < 2 or bottom - top < 2:
        return None
    scale = min(MAX_UPSCALE, long_side / max(right - left, bottom - top))
    return Crop(left, top, right, bottom, scale)


class PlateReader:
    """Plates in vehicle crops scaled to ``crop_side`` px; ``find_plates`` may be called from many threads at once."""

    def __init__(
        self, *, crop_side: int = CROP_LONG_SIDE, intra_op_threads: int = 1, providers: Sequence[str] = ()
    ) -> None:
        self._crop_side = crop_side
        self._detector = TextDetector(intra_op_threads=intra_op_threads, providers=providers)
        self._recognizer = TextRecognizer(intra_op_threads=intra_op_threads, providers=providers)

    def find_plates(self, image: BgrImage, vehicle_boxes: Sequence[Box] | None = None) -> list[Box]:
        """Plate boxes (label ``license_plate``) in ``image`` (HxWx3 BGR), in its pixels. ``vehicle_boxes``
        None: the whole frame is one crop (readable plates only); empty: no vehicle, so no plate."""
        height, width = image.shape[:2]
        if vehicle_boxes is None:
            whole = Crop(0, 0, width, height, 1.0)  # the detector shrinks it to its own input size
            return self._in_crop(image, whole, in_vehicle=False)
        plates: list[Box] = []
        for vehicle in vehicle_boxes:
            crop = plan_crop(vehicle, width, height, self._crop_side)
            if crop is not None:
                plates += self._in_crop(image, crop, in_vehicle=True)
        return plates

    def _in_crop(self, image: BgrImage, crop: Crop, *, in_vehicle: bool) -> list[Box]:
        region = image[crop.top : crop.bottom, crop.left : crop.right]
        if crop.scale != 1.0:
            interpolation = cv2.INTER_CUBIC if crop.scale > 1 else cv2.INTER_AREA
            region = np.asarray(
                cv2.resize(region, None, fx=crop.scale, fy=crop.scale, interpolation=interpolation), np.uint8
            )
        quads = [quad for quad, _ in self._detector.detect(region)]
        readings = self._recognizer.read(region, quads)
        kept: list[Box] = []
        for quad, (text, confidence) in zip(quads, readings, strict=True):
            if looks_like_plate(text):
                kept.append(_with_confidence(crop.plate_box(quad), confidence))
            elif in_vehicle and not readable(text) and plate_shaped(quad, region.shape[0]):
                kept.append(_with_confidence(crop.plate_box(quad), 0.5))
        return kept


def _with_confidence(box: Box, confidence: float) -> Box:
    return Box(box.left, box.top, box.right, box.bottom, box.label, confidence)

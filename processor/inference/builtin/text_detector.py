"""Text boxes: the PP-OCRv4 DB text detector (Apache-2.0, from RapidOCR's wheel) on onnxruntime.

The network gives a per-pixel text probability; DB post-processing turns it into boxes: threshold the map,
take each connected region's minimum-area rectangle, keep it when the mean probability inside is high enough,
and grow it back (the network is trained on shrunk text regions) by ``area * unclip_ratio / perimeter``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from processor.frames import BgrImage
from processor.inference.builtin.catalog import PPOCR_DET_PATH
from processor.inference.builtin.onnx_sessions import open_session

_ALIGN = 32  # both input sides must be multiples of this
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet, RGB
_STD = np.array([0.229, 0.224, 0.225], np.float32)
_MIN_SIDE = 3.0  # px of the probability map: thinner regions are noise

Floats = npt.NDArray[np.float32]
Quad = npt.NDArray[np.float64]
"""4x2 corners of a rotated rectangle, in order around it."""


def to_blob(image: BgrImage, max_side: int) -> Floats:
    """The 1x3xHxW normalised RGB input: shrunk so the long side is at most ``max_side``, then each side
    resized to a multiple of 32 (so x and y scale slightly differently; boxes are mapped back per axis)."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    new_w = max(_ALIGN, round(width * scale / _ALIGN) * _ALIGN)
    new_h = max(_ALIGN, round(height * scale / _ALIGN) * _ALIGN)
    rgb = cv2.cvtColor(cv2.resize(image, (new_w, new_h)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    blob: Floats = ((rgb - _MEAN) / _STD).transpose(2, 0, 1)[np.newaxis]
    return np.ascontiguousarray(blob)


def unclip(rect: tuple[Sequence[float], Sequence[float], float], ratio: float) -> Quad:
    """The rotated rectangle grown on every side by ``area * ratio / perimeter`` (DB's unclip distance; for a
    rectangle, offsetting the polygon with square corners is exactly this)."""
    (cx, cy), (w, h), angle = rect
    distance = w * h * ratio / (2.0 * (w + h)) if w + h > 0 else 0.0
    corners: Quad = cv2.boxPoints(((cx, cy), (w + 2 * distance, h + 2 * distance), angle)).astype(np.float64)
    return corners


def db_boxes(
    probability: Floats,
    *,
    threshold: float = 0.3,
    box_threshold: float = 0.5,
    unclip_ratio: float = 1.6,
) -> list[tuple[Quad, float]]:
    """Text boxes (corners in ``probability``'s pixels, score) from a HxW text probability map.

    ``threshold`` binarises the map; a region is kept when the mean probability inside its minimum-area
    rectangle is at least ``box_threshold``.
    """
    bitmap = (probability > threshold).astype(np.uint8)
    joined = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))  # as PaddleOCR: joins characters split by 1 px
    contours, _ = cv2.findContours(joined, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found: list[tuple[Quad, float]] = []
    for contour in contours:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < _MIN_SIDE:
            continue
        score = polygon_mean(probability, np.asarray(cv2.boxPoints(rect), np.float64))
        if score < box_threshold:
            continue
        grown = unclip(rect, unclip_ratio)
        if min(cv2.minAreaRect(grown.astype(np.float32))[1]) < _MIN_SIDE + 2:
            continue
        found.append((grown, score))
    return found


def polygon_mean(values: Floats, polygon: npt.NDArray[np.floating]) -> float:
    """The mean of ``values`` over the pixels inside ``polygon`` (Nx2 x, y)."""
    mask = np.zeros(values.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return float(cv2.mean(values, mask)[0]) if mask.any() else 0.0


class TextDetector:
    """PP-OCRv4's text detector, loaded once; ``detect`` may be called from many threads at once.

    :param max_side: the long side the network sees, px (larger images are shrunk, smaller ones not enlarged).
    """

    def __init__(
        self,
        model_path: Path = PPOCR_DET_PATH,
        *,
        max_side: int = 960,
        intra_op_threads: int = 1,
        providers: Sequence[str] = (),
    ) -> None:
        if max_side < _ALIGN:
            raise ValueError(f"max_side must be at least {_ALIGN}, got {max_side}")
        self.max_side = max_side
        self._session = open_session(model_path, intra_op_threads=intra_op_threads, providers=providers)
        self._input = self._session.get_inputs()[0].name

    def detect(self, image: BgrImage) -> list[tuple[Quad, float]]:
        """Text boxes in ``image`` (HxWx3 BGR): corners in the image's pixels, and a 0..1 score."""
        blob = to_blob(image, self.max_side)
        probability = self._session.run(None, {self._input: blob})[0][0, 0]
        scale = np.array([image.shape[1] / blob.shape[3], image.shape[0] / blob.shape[2]])
        return [(quad * scale, score) for quad, score in db_boxes(probability)]

"""Persons and vehicles: NanoDet-g-416 (COCO, Apache-2.0) on onnxruntime, on the whole frame and optionally on
overlapping tiles, boxes in the original image's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import EllipsisType

import numpy as np

from processor.frames import BgrImage, Box
from processor.inference.builtin.catalog import NANODET_PATH
from processor.inference.builtin.faces import nms
from processor.inference.builtin.nanodet_decoding import Detections, decode, to_blob
from processor.inference.builtin.onnx_sessions import open_session
from processor.inference.builtin.tiling import containment_merge, tile_windows

COCO_LABELS = {0: "person", 1: "vehicle", 2: "vehicle", 3: "vehicle", 5: "vehicle", 7: "vehicle"}
"""COCO class id -> label: person; bicycle, car, motorcycle, bus and truck are all ``vehicle``."""

_INPUT = "input_1:0"
_OUTPUTS = {  # stride -> (class scores, box distributions), names as tf2onnx kept them from the TF.js signature
    8: ("Identity:0", "Identity_3:0"),
    16: ("Identity_1:0", "Identity_4:0"),
    32: ("Identity_2:0", "Identity_5:0"),
}
_CLASSES = np.array(sorted(COCO_LABELS), dtype=np.int64)


class ObjectDetector:
    """NanoDet, loaded once; ``detect`` may be called from many threads at once (onnxruntime's ``run`` is
    thread-safe). Each network run uses ``intra_op_threads`` threads of its own.

    :param threshold: minimum class score (0..1).
    :param nms_iou: boxes of one label overlapping above this IoU are merged into the most confident one.
    :param tile: also look at ``tile`` x ``tile`` windows (20 % overlap) of frames larger than that, for far
        objects (~9 network runs for 1080p instead of 1); ``None``: the whole frame only.
    """

    def __init__(
        self,
        model_path: Path = NANODET_PATH,
        *,
        threshold: float = 0.35,
        nms_iou: float = 0.5,
        tile: int | None = 640,
        intra_op_threads: int = 1,
        providers: Sequence[str] = (),
    ) -> None:
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.tile = tile
        self._session = open_session(model_path, intra_op_threads=intra_op_threads, providers=providers)
        self._output_names = [name for pair in _OUTPUTS.values() for name in pair]

    def detect(self, image: BgrImage, *, tile: int | EllipsisType | None = ...) -> list[Box]:
        """Every person and vehicle in ``image`` (HxWx3 BGR), labels ``person`` / ``vehicle``, confidence 0..1.
        ``tile``: the side of the tiles looked at besides the whole frame (None: none), default the detector's."""
        height, width = image.shape[:2]
        side = self.tile if tile is ... else tile
        boxes = self._boxes(image, 0, 0)
        if side is not None:
            for x, y, w, h in tile_windows(width, height, side):
                boxes += self._boxes(image[y : y + h, x : x + w], x, y)
        merged = containment_merge(self._nms(boxes))
        limits = (float(width), float(height))
        return sorted((_clamped(box, *limits) for box in merged), key=lambda box: -box.confidence)

    def _boxes(self, image: BgrImage, x: int, y: int) -> list[Box]:
        """The boxes of one network run on ``image``, a window at (x, y) of the frame, in frame pixels."""
        detections, scale = self._run(image)
        return [
            Box(x1 / scale + x, y1 / scale + y, x2 / scale + x, y2 / scale + y, COCO_LABELS[cls], score)
            for (x1, y1, x2, y2), score, cls in zip(
                detections.boxes.tolist(), detections.scores.tolist(), detections.classes.tolist(), strict=True
            )
        ]

    def _run(self, image: BgrImage) -> tuple[Detections, float]:
        blob, scale = to_blob(image)
        values = dict(zip(self._output_names, self._session.run(self._output_names, {_INPUT: blob}), strict=True))
        heads = {stride: (values[scores][0], values[boxes][0]) for stride, (scores, boxes) in _OUTPUTS.items()}
        return decode(heads, _CLASSES, self.threshold), scale

    def _nms(self, boxes: list[Box]) -> list[Box]:
        kept: list[Box] = []
        for label in sorted({box.label for box in boxes}):
            same = [box for box in boxes if box.label == label]
            corners = np.array([[b.left, b.top, b.right, b.bottom] for b in same], np.float32)
            scores = np.array([b.confidence for b in same], np.float32)
            kept += [same[i] for i in nms(corners, scores, self.nms_iou)]
        return kept


def _clamped(box: Box, width: float, height: float) -> Box:
    return Box(
        max(0.0, box.left),
        max(0.0, box.top),
        min(width, box.right),
        min(height, box.bottom),
        box.label,
        box.confidence,
    )

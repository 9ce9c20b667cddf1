"""Bring-your-own ONNX detectors, as pure array functions: the input blob (letterbox or stretch, normalisation),
the decoding of the common export heads into boxes in network pixels, NMS per class, and the way back to frame
pixels.

Heads: YOLOv8/v11 ``(1, 4+C, N)`` (cx, cy, w, h, then C class scores, no objectness) and YOLOv5 ``(1, N, 5+C)``
(cx, cy, w, h, objectness, C class scores), told apart by the longer axis being the N candidates; SSD-style boxes
``(1, N, 4)`` (x1, y1, x2, y2, 0..1 of the input) with scores ``(1, N, C)``, or one ``(1, 1, N, 7)``
DetectionOutput (image id, class, score, x1, y1, x2, y2, 0..1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from processor.frames import BgrImage

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

LETTERBOX_FILL = 114
"""Grey of the letterbox bars, as Ultralytics pads."""


@dataclass(frozen=True, slots=True)
class Detections:
    """N boxes (x1, y1, x2, y2) in network pixels, their scores and class indices."""

    boxes: Floats
    scores: Floats
    classes: Ints

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the image sits in the network input: network = image * scale + pad, per axis."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_image(self, boxes: Floats) -> Floats:
        """Nx4 network-pixel corners -> image-pixel corners."""
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], np.float32)
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        back: Floats = ((boxes - pad) / scale).astype(np.float32)
        return back


@dataclass(frozen=True, slots=True)
class Normalisation:
    """The network's input values: ``(pixel * scale - mean) / std`` per channel, in ``rgb`` or BGR order."""

    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rgb: bool


def to_blob(
    image: BgrImage, size: tuple[int, int], letterbox: bool, normalisation: Normalisation
) -> tuple[Floats, Placement]:
    """The 1x3xHxW input for ``size`` (w, h) and where the image sits in it: ``letterbox`` keeps the aspect ratio,
    centred on grey bars; else the image is stretched to the input."""
    width, height = size
    rows, cols = image.shape[:2]
    if letterbox:
        scale = min(width / cols, height / rows)
        new_w, new_h = min(width, max(1, round(cols * scale))), min(height, max(1, round(rows * scale)))
        pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
        canvas: BgrImage = np.full((height, width, 3), LETTERBOX_FILL, np.uint8)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = cv2.resize(
            image, (new_w, new_h), interpolation=interpolation
        )
        placement = Placement(new_w / cols, new_h / rows, float(pad_x), float(pad_y))
    else:
        interpolation = cv2.INTER_AREA if width * height < cols * rows else cv2.INTER_LINEAR
        canvas = np.asarray(cv2.resize(image, (width, height), interpolation=interpolation), np.uint8)
        placement = Placement(width / cols, height / rows, 0.0, 0.0)
    pixels = canvas[..., ::-1] if normalisation.rgb else canvas
    values = (
        pixels.astype(np.float32) * np.float32(normalisation.scale) - np.array(normalisation.mean, np.float32)
    ) / (np.array(normalisation.std, np.float32))
    blob: Floats = np.ascontiguousarray(values.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
    return blob, placement


def _kept(scores: Floats, classes: Ints, thresholds: Mapping[int, float]) -> npt.NDArray[np.bool_]:
    """Candidates of a mapped class whose score reaches that class's threshold."""
    limits = np.array([thresholds.get(int(c), np.inf) for c in classes.tolist()], np.float32)
    kept: npt.NDArray[np.bool_] = scores >= limits
    return kept


def _best_mapped(class_scores: Floats, thresholds: Mapping[int, float]) -> tuple[Ints, Floats] | None:
    """Each candidate's most likely class among the mapped ones (an unmapped class never hides a mapped one), and
    its score; ``None`` when no mapped class is among the columns or there are no candidates."""
    mapped = np.array(sorted(c for c in thresholds if c < class_scores.shape[1]), np.int64)
    if len(mapped) == 0 or len(class_scores) == 0:
        return None
    classes = mapped[class_scores[:, mapped].argmax(axis=1)]
    scores: Floats = class_scores[np.arange(len(classes)), classes].astype(np.float32)
    return classes, scores


def yolo_layout(shape: tuple[int, ...]) -> str:
    """``v8`` for (1, 4+C, N), ``v5`` for (1, N, 5+C): the longer axis holds the N candidates."""
    return "v8" if shape[-2] < shape[-1] else "v5"


def decode_yolo(output: Floats, thresholds: Mapping[int, float]) -> Detections:
    """The candidates of one image's YOLO head (``output`` without the batch axis), each with its best class mapped
    in ``thresholds`` (class index -> minimum score), kept when it reaches it; v5 scores are objectness x class
    score. Boxes in network pixels."""
    if yolo_layout(output.shape) == "v8":
        rows = output.T
        centres, class_scores = rows[:, :4], rows[:, 4:]
    else:
        rows = output
        centres, class_scores = rows[:, :4], rows[:, 5:] * rows[:, 4:5]
    best = _best_mapped(class_scores, thresholds)
    if best is None:
        return Detections.empty()
    classes, scores = best
    kept = _kept(scores, classes, thresholds)
    cx, cy, w, h = centres[kept].astype(np.float32).T
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return Detections(boxes.reshape(-1, 4), scores[kept], classes[kept])


def decode_ssd(boxes: Floats, scores: Floats, size: tuple[int, int], thresholds: Mapping[int, float]) -> Detections:
    """SSD-style split outputs of one image: ``boxes`` Nx4 (x1, y1, x2, y2, 0..1), ``scores`` NxC; each candidate
    with its best mapped class, kept when it reaches that class's threshold. Boxes in network pixels of ``size``."""
    best = _best_mapped(scores, thresholds)
    if best is None:
        return Detections.empty()
    classes, best_scores = best
    kept = _kept(best_scores, classes, thresholds)
    return Detections(_to_pixels(boxes[kept], size), best_scores[kept], classes[kept])


def decode_detection_output(rows: Floats, size: tuple[int, int], thresholds: Mapping[int, float]) -> Detections:
    """A DetectionOutput of one image: Nx7 rows (image id, class, score, x1, y1, x2, y2 0..1); rows of image id
    -1 (padding) are dropped."""
    rows = rows[rows[:, 0] >= 0]
    classes = rows[:, 1].astype(np.int64)
    scores = rows[:, 2].astype(np.float32)
    kept = _kept(scores, classes, thresholds)
    return Detections(_to_pixels(rows[kept, 3:7], size), scores[kept], classes[kept])


def _to_pixels(boxes: Floats, size: tuple[int, int]) -> Floats:
    width, height = size
    pixels: Floats = (boxes.astype(np.float32) * np.array([width, height, width, height], np.float32)).reshape(-1, 4)
    return pixels


def nms_per_class(detections: Detections, iou: float) -> Detections:
    """The detections NMS keeps, class by class (``cv2.dnn.NMSBoxes``), most confident first."""
    keep: list[int] = []
    for cls in np.unique(detections.classes).tolist():
        (indices,) = np.nonzero(detections.classes == cls)
        corners = detections.boxes[indices]
        rects = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1).tolist()
        chosen = cv2.dnn.NMSBoxes(rects, detections.scores[indices].tolist(), 0.0, iou)
        keep += [int(indices[i]) for i in np.asarray(chosen, np.int64).reshape(-1)]
    order = sorted(keep, key=lambda i: -float(detections.scores[i]))
    return Detections(detections.boxes[order].reshape(-1, 4), detections.scores[order], detections.classes[order])

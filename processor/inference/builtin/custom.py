"""Bring-your-own ONNX detectors (``builtin.custom_models``): the session, its input and outputs, and the boxes in
frame pixels; the array work is in :mod:`processor.inference.builtin.custom_decoding`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from processor.frames import BgrImage, Box
from processor.inference.builtin.catalog import ModelInfo
from processor.inference.builtin.custom_decoding import (
    Detections,
    Floats,
    Normalisation,
    decode_detection_output,
    decode_ssd,
    decode_yolo,
    nms_per_class,
    to_blob,
)
from processor.inference.builtin.onnx_sessions import open_session
from processor.inference.builtin.tiling import containment_merge, tile_windows
from processor.settings import CustomModelSettings
from schemas.config import InferenceType


class ShapeMismatch(ValueError):
    """The model's input or outputs are not those of its ``format``."""


def model_info(settings: CustomModelSettings) -> ModelInfo:
    """The catalog entry of a custom model: its labels in class-index order, each once."""
    labels = tuple(dict.fromkeys(label for _, label in sorted(settings.labels.items())))
    return ModelInfo(settings.name, InferenceType.detection, labels)


def shape_problem(settings: CustomModelSettings) -> str | None:
    """Why the model does not fit its settings (input, outputs of its format, the label map's classes), found by
    running it once on a blank input on CPU; ``None`` when it fits."""
    try:
        session = open_session(settings.path)
    except Exception as error:  # noqa: BLE001 (onnxruntime raises its own untyped errors for unreadable files)
        return f"onnxruntime cannot load it: {' '.join(str(error).split())}"
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
        found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        return f"expected one float input (1, 3, height, width), found {found}"
    width, height = settings.input_size
    fixed = [side if isinstance(side, int) else None for side in inputs[0].shape[2:]]
    if fixed != [height, width] and all(side is not None for side in fixed):
        return f"its input is {fixed[1]} x {fixed[0]} px (width x height), input_size says {width} x {height}"
    try:
        outputs = session.run(None, {inputs[0].name: np.zeros((1, 3, height, width), np.float32)})
        _decode(settings, outputs, {})
    except ShapeMismatch as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 (a wrong input size fails inside onnxruntime)
        return f"it does not run on a (1, 3, {height}, {width}) input: {' '.join(str(error).split())}"
    return None


def _decode(settings: CustomModelSettings, outputs: Sequence[Floats], thresholds: dict[int, float]) -> Detections:
    """One image's detections from the raw outputs; raises :class:`ShapeMismatch` when they are not the format's."""
    shapes = [tuple(output.shape) for output in outputs]
    classes = max(settings.labels) + 1
    if settings.format == "yolo":
        heads = [output for output in outputs if output.ndim == 3 and output.shape[0] == 1]
        if not heads:
            raise ShapeMismatch(f"format yolo needs an output (1, 4+C, N) or (1, N, 5+C), found {shapes}")
        head = heads[0][0]
        columns = min(head.shape) - (4 if head.shape[0] < head.shape[1] else 5)
        if columns < 1:
            raise ShapeMismatch(f"format yolo needs an output (1, 4+C, N) or (1, N, 5+C) with C >= 1, found {shapes}")
        if columns < classes:
            raise ShapeMismatch(f"the yolo output {tuple(heads[0].shape)} has {columns} classes, labels need {classes}")
        return decode_yolo(head, thresholds)
    rows = [output for output in outputs if output.ndim == 4 and output.shape[:2] == (1, 1) and output.shape[3] == 7]
    if rows:
        return decode_detection_output(rows[0][0, 0], settings.input_size, thresholds)
    triples = [output for output in outputs if output.ndim == 3 and output.shape[0] == 1]
    boxes = next((output for output in triples if output.shape[2] == 4), None)
    scores = next((o for o in triples if o is not boxes and boxes is not None and o.shape[1] == boxes.shape[1]), None)
    if boxes is None or scores is None:
        raise ShapeMismatch(f"format ssd needs boxes (1, N, 4) + scores (1, N, C) or (1, 1, N, 7), found {shapes}")
    if scores.shape[2] < classes:
        raise ShapeMismatch(
            f"the ssd scores {tuple(scores.shape)} have {scores.shape[2]} classes, labels need {classes}"
        )
    return decode_ssd(boxes[0], scores[0], settings.input_size, thresholds)


class CustomDetector:
    """A user-supplied ONNX detector, loaded once; ``detect`` may be called from many threads at once."""

    def __init__(
        self, settings: CustomModelSettings, *, intra_op_threads: int = 1, providers: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        self._session = open_session(settings.path, intra_op_threads=intra_op_threads, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self._thresholds = {index: settings.threshold(label) for index, label in settings.labels.items()}
        self._normalisation = Normalisation(
            scale=settings.scale or 1.0,
            mean=settings.mean or (0.0, 0.0, 0.0),
            std=settings.std or (1.0, 1.0, 1.0),
            rgb=settings.channels == "RGB",
        )

    def detect(self, image: BgrImage) -> list[Box]:
        """Every mapped detection in ``image`` (HxWx3 BGR), most confident first, in its pixels; with tiling, the
        tiles' boxes are merged with the whole frame's (NMS, then fragments inside a larger box)."""
        height, width = image.shape[:2]
        parts = [self._detections(image, 0, 0)]
        if self.settings.tile is not None:
            for x, y, w, h in tile_windows(width, height, self.settings.tile):
                parts.append(self._detections(image[y : y + h, x : x + w], x, y))
        detections = nms_per_class(
            Detections(
                np.concatenate([part.boxes for part in parts]).reshape(-1, 4),
                np.concatenate([part.scores for part in parts]),
                np.concatenate([part.classes for part in parts]),
            ),
            self.settings.iou_threshold,
        )
        labels = self.settings.labels
        boxes = [
            Box(max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2), labels[cls], score)
            for (x1, y1, x2, y2), score, cls in zip(
                detections.boxes.tolist(), detections.scores.tolist(), detections.classes.tolist(), strict=True
            )
        ]
        if len(parts) > 1:
            boxes = containment_merge(boxes)
        return sorted(boxes, key=lambda box: -box.confidence)

    def _detections(self, image: BgrImage, x: int, y: int) -> Detections:
        """One network run on ``image``, a window at (x, y) of the frame; boxes in frame pixels."""
        blob, placement = to_blob(
            image, self.settings.input_size, self.settings.resize == "letterbox", self._normalisation
        )
        outputs: list[Floats] = self._session.run(None, {self._input: blob})
        found = _decode(self.settings, outputs, self._thresholds)
        offset = np.array([x, y, x, y], np.float32)
        return Detections(placement.to_image(found.boxes) + offset, found.scores, found.classes)

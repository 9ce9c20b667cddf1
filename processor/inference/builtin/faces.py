"""Faces: CenterFace (MIT) on onnxruntime, boxes in the original image's pixels.

OpenCV DNN is not an option for this model: it answers with thousands of false boxes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from processor.frames import BgrImage, Box
from processor.inference.builtin.catalog import CENTERFACE_PATH
from processor.inference.builtin.onnx_sessions import open_session

_STRIDE = 4  # one heatmap cell per 4x4 input pixels
_ALIGN = 32  # both input sides must be multiples of this
_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539"]  # heatmap, scale, offset (landmarks, "540", are not needed)

Floats = npt.NDArray[np.float32]


class FaceDetector:
    """CenterFace, loaded once; ``detect`` may be called from many threads at once (onnxruntime's ``run`` is
    thread-safe). Each call uses ``intra_op_threads`` threads of its own: keep calls x threads <= cores.

    :param max_side: the long side the network sees, px; larger images are shrunk (smaller faces get lost),
        smaller ones are not enlarged.
    :param threshold: minimum heatmap score (0..1) of a face.
    :param nms_iou: overlapping boxes above this IoU are merged into the most confident one.
    """

    def __init__(
        self,
        model_path: Path = CENTERFACE_PATH,
        *,
        max_side: int = 960,
        threshold: float = 0.2,
        nms_iou: float = 0.3,
        intra_op_threads: int = 1,
        providers: Sequence[str] = (),
    ) -> None:
        if max_side < _ALIGN:
            raise ValueError(f"max_side must be at least {_ALIGN}, got {max_side}")
        self.max_side = max_side
        self.threshold = threshold
        self.nms_iou = nms_iou
        self._session = open_session(model_path, intra_op_threads=intra_op_threads, providers=providers)

    def detect(self, image: BgrImage) -> list[Box]:
        """Every face in ``image`` (HxWx3 BGR), most confident first, label ``face``, confidence 0..1."""
        blob, scale = to_blob(image, self.max_side)
        heatmap, sizes, offsets = self._session.run(_OUTPUTS, {_INPUT: blob})
        boxes, scores = decode(heatmap[0, 0], sizes[0], offsets[0], self.threshold)
        keep = nms(boxes, scores, self.nms_iou)
        height, width = image.shape[:2]
        found = np.clip(boxes[keep] / scale, 0, [width, height, width, height])
        return [
            Box(float(x1), float(y1), float(x2), float(y2), "face", float(score))
            for (x1, y1, x2, y2), score in zip(found, scores[keep], strict=True)
        ]


def to_blob(image: BgrImage, max_side: int) -> tuple[Floats, float]:
    """The 1x3xHxW float RGB input (0..255, no normalisation) and the factor applied to the image.

    The image is shrunk uniformly so its long side is at most ``max_side``, then zero-padded on the right and
    bottom to multiples of 32, so that network coordinates are image coordinates times the factor.
    """
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = image if scale == 1.0 else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    blob = np.zeros((1, 3, _aligned(new_h), _aligned(new_w)), np.float32)
    blob[0, :, :new_h, :new_w] = resized[:, :, ::-1].transpose(2, 0, 1)
    return blob, scale


def _aligned(side: int) -> int:
    return math.ceil(side / _ALIGN) * _ALIGN


def decode(heatmap: Floats, sizes: Floats, offsets: Floats, threshold: float) -> tuple[Floats, Floats]:
    """Boxes (Nx4: x1, y1, x2, y2 in network pixels) and scores of the heatmap cells above ``threshold``.

    ``sizes`` holds log(height/4), log(width/4) per cell; ``offsets`` the sub-cell shift of the centre (y, x).
    """
    rows, cols = np.nonzero(heatmap > threshold)
    box_h = np.exp(sizes[0, rows, cols]) * _STRIDE
    box_w = np.exp(sizes[1, rows, cols]) * _STRIDE
    centre_y = (rows + offsets[0, rows, cols] + 0.5) * _STRIDE
    centre_x = (cols + offsets[1, rows, cols] + 0.5) * _STRIDE
    boxes = np.stack(
        [centre_x - box_w / 2, centre_y - box_h / 2, centre_x + box_w / 2, centre_y + box_h / 2], axis=1
    ).astype(np.float32)
    return boxes, heatmap[rows, cols].astype(np.float32)


def nms(boxes: Floats, scores: Floats, iou: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, most confident first."""
    if len(boxes) == 0:
        return []
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou)
    return [int(i) for i in np.asarray(keep).reshape(-1)]

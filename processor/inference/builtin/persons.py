"""Persons: MediaPipe selfie segmentation (Apache-2.0) on OpenCV DNN, a mask at the image's full resolution.

The model sees the whole image stretched to 256x256 RGB in [0, 1]; its 256x256 person probability is
resized to the image and thresholded. Built for people near the camera: small distant people are missed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from processor.frames import BgrImage, BoolMask, Box
from processor.inference.builtin.catalog import SELFIE_PATH

_SIDE = 256


class PersonSegmenter:
    """The selfie segmentation network, one ``cv2.dnn.Net`` per thread (a Net keeps its input and buffers in
    the object, so it is not thread-safe; a copy costs ~4 ms and 250 KB of weights, and a lock would serialise
    frames); ``segment`` may be called from many threads at once.

    :param threshold: person probability (0..1) above which a pixel belongs to the mask.
    """

    def __init__(self, model_path: Path = SELFIE_PATH, *, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._weights = np.frombuffer(model_path.read_bytes(), np.uint8)
        self._local = threading.local()
        self._net()  # fail now, not in a worker, when the model does not load

    def _net(self) -> cv2.dnn.Net:
        net: cv2.dnn.Net | None = getattr(self._local, "net", None)
        if net is None:
            net = cv2.dnn.readNetFromTFLite(self._weights)
            self._local.net = net
        return net

    def segment(self, image: BgrImage) -> BoolMask:
        """The HxW person mask of ``image`` (HxWx3 BGR): True where a person is."""
        blob = cv2.dnn.blobFromImage(image, 1.0 / 255.0, (_SIDE, _SIDE), swapRB=True)
        net = self._net()
        net.setInput(blob)
        probability = net.forward().reshape(_SIDE, _SIDE)
        height, width = image.shape[:2]
        full = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
        mask: BoolMask = full > self.threshold
        return mask


def component_boxes(mask: BoolMask, label: str) -> list[Box]:
    """One box per 8-connected component of ``mask``, largest first, confidence 1."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    components = sorted(stats[1:count].tolist(), key=lambda stat: -stat[cv2.CC_STAT_AREA])
    return [Box(float(x), float(y), float(x + w), float(y + h), label) for x, y, w, h, _ in components]

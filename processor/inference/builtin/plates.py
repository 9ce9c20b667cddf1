"""Licence plates: OpenCV's Haar cascade for Russian plates, run on a downscaled copy of the image.

The cascade ships with opencv-python-headless 4.x (``cv2.data.haarcascades``) and is not copied here. It was
trained on Russian plates (about 4.6:1, black on white), so expect misses on other plate designs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import cv2.data
import numpy as np

from processor.frames import BgrImage, Box
from processor.inference.builtin.catalog import PLATE_CASCADE_FILE

CASCADE_PATH = Path(cv2.data.haarcascades) / PLATE_CASCADE_FILE
_WINDOW = (60, 20)  # the cascade's detection window (w, h): nothing smaller is found


class PlateDetector:
    """The plate cascade, loaded once per thread; ``detect`` may be called from many threads at once.

    ``cv2.CascadeClassifier.detectMultiScale`` keeps scratch buffers in the classifier, so one instance must
    not run in two threads at once. Each thread gets its own instance (``threading.local``) rather than one
    behind a lock: a lock would serialise the whole detection (tens of ms per frame) and leave the other cores
    idle, while an instance costs ~2 ms to load and a few hundred KB, once per worker thread.

    :param downscale: factor applied to the image before detection (1.0 = full resolution); the smallest plate
        found is about 60/downscale x 20/downscale px of the original image. 0.5 keeps every plate of 130 px
        width or more at 1080p and takes about a quarter of the full-resolution time.
    :param scale_factor: step between the cascade's window sizes (``detectMultiScale``'s ``scaleFactor``).
    :param min_neighbors: overlapping hits needed to accept a plate; lower finds more, and more false boxes.
    """

    def __init__(
        self,
        cascade_path: Path = CASCADE_PATH,
        *,
        downscale: float = 0.5,
        scale_factor: float = 1.1,
        min_neighbors: int = 3,
    ) -> None:
        if not 0.0 < downscale <= 1.0:
            raise ValueError(f"downscale must be in (0, 1], got {downscale}")
        self.cascade_path = cascade_path
        self.downscale = downscale
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self._local = threading.local()
        self._cascade()  # fail now, not in a worker, when the file is missing

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade: cv2.CascadeClassifier | None = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = cv2.CascadeClassifier(str(self.cascade_path))
            if cascade.empty():
                raise FileNotFoundError(f"cannot load the plate cascade {self.cascade_path}")
            self._local.cascade = cascade
        return cascade

    def detect(self, image: BgrImage) -> list[Box]:
        """Every plate found in ``image`` (HxWx3 BGR), label ``license_plate``. The cascade gives no score:
        confidence is 1. Its boxes are a 3:1 window around the plate, so somewhat taller than the plate."""
        if image.shape[1] * self.downscale < _WINDOW[0] or image.shape[0] * self.downscale < _WINDOW[1]:
            return []  # smaller than the cascade's window once scaled: it can find nothing (and resize would fail)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.downscale < 1.0:
            gray = cv2.resize(gray, None, fx=self.downscale, fy=self.downscale, interpolation=cv2.INTER_AREA)
        found = self._cascade().detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=_WINDOW
        )
        scale_x = image.shape[1] / gray.shape[1]
        scale_y = image.shape[0] / gray.shape[0]
        return [
            Box(x * scale_x, y * scale_y, (x + w) * scale_x, (y + h) * scale_y, "license_plate")
            for x, y, w, h in np.asarray(found, dtype=np.float64).reshape(-1, 4)
        ]

"""Text reading: the PP-OCRv4 CRNN/SVTR recogniser (Apache-2.0, from RapidOCR's wheel) on onnxruntime.

Each text box is cut out along its rotated rectangle (tilted plates come out level), resized to 48 px high,
normalised to -1..1 and decoded greedily (CTC). The dictionary is in the model's metadata (key ``character``);
as in PaddleOCR, class 0 is the CTC blank and the last class is a space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from processor.frames import BgrImage
from processor.inference.builtin.catalog import PPOCR_REC_PATH
from processor.inference.builtin.onnx_sessions import open_session
from processor.inference.builtin.text_detector import Floats, Quad

HEIGHT = 48
MAX_WIDTH = 320  # PaddleOCR's recogniser width; wider lines are squeezed into it


def ordered_corners(quad: Quad) -> Quad:
    """The corners of the rotated rectangle around ``quad`` as top-left, top-right, bottom-right, bottom-left
    (PaddleOCR's order: the two leftmost points are the left side)."""
    points = sorted(cv2.boxPoints(cv2.minAreaRect(quad.astype(np.float32))).tolist(), key=lambda p: p[0])
    left = sorted(points[:2], key=lambda p: p[1])
    right = sorted(points[2:], key=lambda p: p[1])
    corners: Quad = np.array([left[0], right[0], right[1], left[1]], np.float64)
    return corners


def cut_box(image: BgrImage, quad: Quad) -> BgrImage:
    """The pixels of the rotated rectangle around ``quad`` as an upright image, its long side horizontal."""
    corners = ordered_corners(quad)
    width = max(1, round(float(np.linalg.norm(corners[1] - corners[0]))))
    height = max(1, round(float(np.linalg.norm(corners[3] - corners[0]))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    cut = cv2.warpPerspective(
        image,
        cv2.getPerspectiveTransform(corners.astype(np.float32), target),
        (width, height),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if height >= 1.5 * width:  # a vertical line: PaddleOCR turns it
        cut = cv2.rotate(cut, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return np.asarray(cut, np.uint8)


def to_line_blob(line: BgrImage) -> Floats:
    """The 3x48x320 input for one text line: 48 px high, width by aspect (at most 320), (x/255-0.5)/0.5,
    zero-padded on the right (BGR, as PaddleOCR feeds OpenCV images)."""
    height, width = line.shape[:2]
    new_w = min(MAX_WIDTH, max(1, math.ceil(HEIGHT * width / max(height, 1))))
    resized = cv2.resize(line, (new_w, HEIGHT)).astype(np.float32).transpose(2, 0, 1) / 255.0
    blob: Floats = np.zeros((3, HEIGHT, MAX_WIDTH), np.float32)
    blob[:, :, :new_w] = (resized - 0.5) / 0.5
    return blob


def ctc_greedy(probabilities: Floats, characters: list[str]) -> tuple[str, float]:
    """The text of one TxC CTC output (best class per step, repeats merged, blanks dropped) and its mean
    per-character probability (0 for no text). ``characters[0]`` is the blank."""
    best = probabilities.argmax(axis=1)
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    if not keep.any():
        return "", 0.0
    text = "".join(characters[i] for i in best[keep])
    return text, float(probabilities.max(axis=1)[keep].mean())


def dictionary(metadata_characters: str) -> list[str]:
    """The CTC classes from the model's ``character`` metadata: blank, one per line, then a space."""
    return ["", *metadata_characters.split("\n"), " "]


class TextRecognizer:
    """PP-OCRv4's recogniser, loaded once; ``read`` may be called from many threads at once."""

    def __init__(
        self, model_path: Path = PPOCR_REC_PATH, *, intra_op_threads: int = 1, providers: Sequence[str] = ()
    ) -> None:
        self._session = open_session(model_path, intra_op_threads=intra_op_threads, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self.characters = dictionary(self._session.get_modelmeta().custom_metadata_map["character"])
        classes = self._session.get_outputs()[0].shape[-1]
        if classes != len(self.characters):
            raise ValueError(f"{model_path}: {classes} classes but {len(self.characters)} dictionary entries")

    def read(self, image: BgrImage, quads: list[Quad]) -> list[tuple[str, float]]:
        """The text (and its 0..1 confidence) in each rotated box of ``image``, in order."""
        if not quads:
            return []
        batch = np.stack([to_line_blob(cut_box(image, quad)) for quad in quads])
        probabilities: npt.NDArray[np.float32] = self._session.run(None, {self._input: batch})[0]
        return [ctc_greedy(step, self.characters) for step in probabilities]

"""Synthetic benchmark scenes made of the bundled public-domain portraits, with their true face boxes.

A "crowd" frame pastes heads of the two sample photos at chosen face heights onto a background, row by row,
without overlap; the benchmarks (and the tests) then know exactly where every face is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import cv2
import numpy as np

from processor.frames import BgrImage

FaceBox = tuple[float, float, float, float]

# Face boxes checked by eye on the two sample photos (x1, y1, x2, y2).
ASTRONAUT_FACE = (180, 58, 270, 178)
GRACE_HOPPER_FACE = (175, 131, 357, 336)


@dataclass(frozen=True)
class Head:
    """A head crop of a photo and where the face lies in it (x1, y1, x2, y2, crop pixels)."""

    pixels: BgrImage
    face: tuple[int, int, int, int]


@cache
def sample(name: str) -> BgrImage:
    """A bundled sample frame (``astronaut.jpg``, ``grace_hopper.jpg``), decoded to BGR."""
    data = (resources.files("processor") / "samples" / name).read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"bundled sample {name} is missing or unreadable")
    return np.asarray(image, dtype=np.uint8)


def heads(astronaut: BgrImage | None = None, grace_hopper: BgrImage | None = None) -> list[Head]:
    """The two heads, cropped with hair and some shoulders around the face (bundled samples by default)."""
    astronaut = sample("astronaut.jpg") if astronaut is None else astronaut
    grace_hopper = sample("grace_hopper.jpg") if grace_hopper is None else grace_hopper
    ast_x, ast_y = 125, 15
    gh_x, gh_y = 140, 60
    return [
        Head(astronaut[ast_y:250, ast_x:330], _shift(ASTRONAUT_FACE, ast_x, ast_y)),
        Head(grace_hopper[gh_y:400, gh_x:390], _shift(GRACE_HOPPER_FACE, gh_x, gh_y)),
    ]


def street_background(size: tuple[int, int], seed: int = 0) -> BgrImage:
    """A face-free textured background (W, H): a sky-to-road gradient with random blocks and sensor noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky, road = np.array([200, 170, 140], np.float32), np.array([70, 75, 80], np.float32)
    frame = np.broadcast_to(sky * (1 - ramp) + road * ramp, (height, width, 3)).copy()
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(width // 30, width // 6)), int(rng.integers(height // 20, height // 4))
        frame[y : y + h, x : x + w] = rng.integers(30, 230, 3)
    frame += rng.normal(0.0, 6.0, frame.shape).astype(np.float32)
    clipped: BgrImage = np.clip(frame, 0, 255).astype(np.uint8)
    return clipped


def crowd_frame(
    face_heights: list[int],
    size: tuple[int, int] = (1920, 1080),
    *,
    background: BgrImage | None = None,
    sources: list[Head] | None = None,
    seed: int = 0,
) -> tuple[BgrImage, list[FaceBox]]:
    """A ``size`` (W, H) frame with one head per entry of ``face_heights`` (face height in px, the heads in turn),
    laid out left to right in rows without overlap. Returns the frame and the true face boxes (x1, y1, x2, y2)."""
    width, height = size
    base = street_background(size, seed) if background is None else background
    frame: BgrImage = np.asarray(cv2.resize(base, (width, height), interpolation=cv2.INTER_LINEAR), np.uint8)
    rng = np.random.default_rng(seed)
    sources = heads() if sources is None else sources
    faces: list[FaceBox] = []
    x = y = row_height = 8
    for index, face_height in enumerate(face_heights):
        head = sources[index % len(sources)]
        fx1, fy1, fx2, fy2 = head.face
        factor = face_height / (fy2 - fy1)
        crop_h, crop_w = head.pixels.shape[:2]
        new_w, new_h = max(1, round(crop_w * factor)), max(1, round(crop_h * factor))
        if x + new_w > width:
            x, y, row_height = 8, y + row_height + 8, 8
        if y + new_h > height:
            raise ValueError(f"{len(face_heights)} faces of these sizes do not fit in {width}x{height}")
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        frame[y : y + new_h, x : x + new_w] = cv2.resize(head.pixels, (new_w, new_h), interpolation=interpolation)
        faces.append((x + fx1 * factor, y + fy1 * factor, x + fx2 * factor, y + fy2 * factor))
        x += new_w + 8 + int(rng.integers(0, 16))
        row_height = max(row_height, new_h)
    return frame, faces


def _shift(box: tuple[int, int, int, int], dx: int, dy: int) -> tuple[int, int, int, int]:
    return box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy

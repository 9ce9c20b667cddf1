"""Synthetic test frames made of real public-domain photos: a crowd of pasted faces with their true boxes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import skimage.data

BgrImage = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Head:
    """A head crop of a photo and where the face lies in it (x1, y1, x2, y2, crop pixels)."""

    pixels: BgrImage
    face: tuple[int, int, int, int]


def astronaut() -> BgrImage:
    """skimage's astronaut (NASA, public domain), BGR, 512x512; one face."""
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def grace_hopper() -> BgrImage:
    """matplotlib's grace_hopper.jpg (US Navy, public domain), BGR, 600x512 (HxW); one face."""
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = cv2.imread(str(path))
    assert image is not None
    return image


# Face boxes checked by eye on the two photos (x1, y1, x2, y2).
ASTRONAUT_FACE = (180, 58, 270, 178)
GRACE_HOPPER_FACE = (175, 131, 357, 336)


def heads() -> list[Head]:
    """The two heads, cropped with hair and some shoulders around the face."""
    ast_x, ast_y = 125, 15
    gh_x, gh_y = 140, 60
    return [
        Head(astronaut()[ast_y:250, ast_x:330], _shift(ASTRONAUT_FACE, ast_x, ast_y)),
        Head(grace_hopper()[gh_y:400, gh_x:390], _shift(GRACE_HOPPER_FACE, gh_x, gh_y)),
    ]


def _shift(box: tuple[int, int, int, int], dx: int, dy: int) -> tuple[int, int, int, int]:
    return box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy


def compose_crowd_frame(
    face_heights: list[int], size: tuple[int, int] = (1920, 1080), seed: int = 0
) -> tuple[BgrImage, list[tuple[float, float, float, float]]]:
    """A ``size`` (W, H) frame: skimage's coffee photo as background, then one head per entry of ``face_heights``
    (face height in px, the two photos in turn), laid out left to right in rows without overlap.

    Returns the frame and the true face boxes (x1, y1, x2, y2) in frame pixels.
    """
    width, height = size
    background = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)
    frame = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(seed)
    sources = heads()
    faces: list[tuple[float, float, float, float]] = []
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


def render_plate(width: int) -> BgrImage:
    """A plate-like image drawn with OpenCV: black "A123BC | 77" on white, Russian proportions (520:112 mm)."""
    height = round(width * 112 / 520)
    plate = np.full((height, width, 3), 255, np.uint8)
    cv2.rectangle(plate, (1, 1), (width - 2, height - 2), (0, 0, 0), max(1, width // 100))
    size = height / 40
    text_origin = (round(width * 0.05), round(height * 0.8))
    cv2.putText(plate, "A123BC", text_origin, cv2.FONT_HERSHEY_SIMPLEX, size * 0.95, (0, 0, 0), max(1, int(size * 2.2)))
    divider = round(width * 0.75)
    cv2.line(plate, (divider, 0), (divider, height), (0, 0, 0), max(1, width // 150))
    region_origin = (round(width * 0.79), round(height * 0.6))
    cv2.putText(plate, "77", region_origin, cv2.FONT_HERSHEY_SIMPLEX, size * 0.6, (0, 0, 0), max(1, int(size * 1.5)))
    return plate


def compose_plate_frame(
    plate_widths: list[int], size: tuple[int, int] = (1920, 1080)
) -> tuple[BgrImage, list[tuple[float, float, float, float]]]:
    """A ``size`` (W, H) frame of skimage's coffee photo with one rendered plate per width, in a row near the
    bottom. Returns the frame and the plate boxes (x1, y1, x2, y2)."""
    width, height = size
    frame = cv2.resize(cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR), (width, height))
    plates: list[tuple[float, float, float, float]] = []
    x, top = 40, round(height * 0.8)
    for plate_width in plate_widths:
        plate = render_plate(plate_width)
        plate_height = plate.shape[0]
        if x + plate_width > width or top + plate_height > height:
            raise ValueError(f"plates of widths {plate_widths} do not fit in {width}x{height}")
        frame[top : top + plate_height, x : x + plate_width] = plate
        plates.append((x, top, x + plate_width, top + plate_height))
        x += plate_width + 60
    return frame, plates

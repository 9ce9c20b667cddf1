"""Kernel benchmark: our anonymization kernels beside the original's PIL approach and the JPEG codec.

Per resolution, on a frame tiled from real photos, it times (a) 20 face-sized boxes and (b) a mask covering about
45 % of the frame (person-like blobs), for every built-in technique at degree 1, and in the same run two references:

- ``reference``: the original's approach, implemented faithfully: for each box, PIL crop, ``GaussianBlur(25 * d)``,
  paste; for a mask, ``cv2.findContours`` and for each contour the same on its bounding rectangle, pasted through
  the class mask.
- ``codec``: ``cv2.imdecode`` + ``cv2.imencode`` (JPEG quality 95) of the frame: what a frame costs anyway.

Each figure is the median of ``repeat`` runs (``time.perf_counter``), each on a fresh copy of the frame (a numpy
array for ours, a PIL image for the reference) made outside the timing; the kernels take turns in every round.

Run: ``python -m processor.bench.kernels [--repeat N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from importlib import resources
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageFilter

from processor.anonymize import apply_boxes, apply_mask, technique_names
from processor.anonymize.registry import BUILTIN_TECHNIQUES
from processor.frames import BgrImage, BoolMask, Box

RESOLUTIONS: tuple[tuple[int, int], ...] = ((640, 768), (1024, 768), (2048, 1024), (3840, 2160))
"""Width x height."""

K = TypeVar("K")

BOX_COUNT = 20
# Person-like blobs as (centre x, centre y, semi-axis x, semi-axis y), fractions of width and height: ~46 % of a frame.
_MASK_ELLIPSES = (
    (0.234, 0.556, 0.130, 0.417),
    (0.625, 0.509, 0.156, 0.440),
    (0.885, 0.278, 0.078, 0.185),
    (0.078, 0.185, 0.065, 0.139),
)


def run_kernel_bench(
    resolutions: Sequence[tuple[int, int]] = RESOLUTIONS,
    *,
    repeat: int = 7,
    techniques: Sequence[str] | None = None,
    degree: float = 1.0,
) -> list[dict[str, object]]:
    """One row per resolution, case (``boxes`` or ``mask``) and kernel (a technique, ``reference`` or ``codec``).

    A row holds ``ms`` (median per frame), ``vs_reference`` (reference time / this time: the speed-up),
    ``share_of_codec`` (this time / decode+encode time) and, for masks, ``mask_share`` (fraction of the frame).
    Raises ValueError for an unknown technique.
    """
    chosen = list(techniques) if techniques is not None else sorted(BUILTIN_TECHNIQUES)
    unknown = set(chosen) - set(technique_names())
    if unknown:
        raise ValueError(f"unknown techniques: {sorted(unknown)}")
    return [row for size in resolutions for row in _bench_resolution(*size, chosen, repeat, degree)]


def _bench_resolution(
    width: int, height: int, techniques: Sequence[str], repeat: int, degree: float
) -> list[dict[str, object]]:
    frame = tiled_frame(width, height)
    boxes = face_boxes(width, height)
    mask = blob_mask(width, height)
    class_mask = Image.fromarray(mask.astype(np.uint8) * 255)  # what the original pasted through, made once
    encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    # Each task makes its fresh input (not timed) and returns what to time.
    tasks: dict[tuple[str, str], Callable[[], Callable[[], object]]] = {
        ("codec", "codec"): lambda: partial(_decode_encode, encoded)
    }
    for name in techniques:
        tasks["boxes", name] = partial(
            _on_copy, frame, partial(apply_boxes, boxes=boxes, technique=name, degree=degree)
        )
        tasks["mask", name] = partial(_on_copy, frame, partial(apply_mask, mask=mask, technique=name, degree=degree))
    tasks["boxes", "reference"] = lambda: partial(_reference_boxes, boxes, degree, Image.fromarray(frame))
    tasks["mask", "reference"] = lambda: partial(_reference_mask, mask, class_mask, degree, Image.fromarray(frame))
    timings = _interleaved_medians_ms(tasks, repeat)
    codec_ms = timings.pop(("codec", "codec"))
    rows: list[dict[str, object]] = []
    for case in ("boxes", "mask"):
        figures = {kernel: ms for (of, kernel), ms in timings.items() if of == case} | {"codec": codec_ms}
        for kernel, ms in figures.items():
            row: dict[str, object] = {
                "resolution": f"{width}x{height}",
                "case": case,
                "kernel": kernel,
                "ms": round(ms, 3),
                "vs_reference": round(figures["reference"] / ms, 2),
                "share_of_codec": round(ms / codec_ms, 3),
            }
            if case == "mask":
                row["mask_share"] = round(float(mask.mean()), 3)
            rows.append(row)
    return rows


def tiled_frame(width: int, height: int) -> BgrImage:
    """A frame of real photos at their own scale: the bundled astronaut and Grace Hopper portraits, tiled."""
    samples = resources.files("processor") / "samples"
    astronaut = _decode(samples.joinpath("astronaut.jpg").read_bytes())
    hopper = _decode(samples.joinpath("grace_hopper.jpg").read_bytes())[44:556]
    row = np.hstack([astronaut, hopper] * (width // 1024 + 1))
    rows = [row if index % 2 == 0 else row[:, ::-1] for index in range(height // 512 + 1)]
    return np.ascontiguousarray(np.vstack(rows)[:height, :width])


def face_boxes(width: int, height: int, count: int = BOX_COUNT, seed: int = 7) -> list[Box]:
    """``count`` face-like boxes (5:6), 3-15 % of the frame height, anywhere (overlaps possible)."""
    rng = np.random.default_rng(seed)
    boxes = []
    for _ in range(count):
        side = height * rng.uniform(0.03, 0.15)
        left, top = rng.uniform(0, width - side), rng.uniform(0, height - side * 1.2)
        boxes.append(Box(left, top, left + side, top + side * 1.2, "face"))
    return boxes


def blob_mask(width: int, height: int) -> BoolMask:
    mask = np.zeros((height, width), np.uint8)
    for centre_x, centre_y, semi_x, semi_y in _MASK_ELLIPSES:
        centre = (round(centre_x * width), round(centre_y * height))
        axes = (round(semi_x * width), round(semi_y * height))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=cv2.FILLED)
    return mask.astype(bool)


def _on_copy(frame: BgrImage, hide: Callable[[BgrImage], object]) -> Callable[[], object]:
    return partial(hide, frame.copy())


def _reference_boxes(boxes: Sequence[Box], degree: float, picture: Image.Image) -> None:
    """The original: PIL crop -> GaussianBlur(25 * d) -> paste, each box once."""
    for box in boxes:
        area = (round(box.left), round(box.top), round(box.right), round(box.bottom))
        picture.paste(picture.crop(area).filter(ImageFilter.GaussianBlur(25 * degree)), area[:2])


def _reference_mask(mask: BoolMask, class_mask: Image.Image, degree: float, picture: Image.Image) -> None:
    """The original: per contour, blur its bounding rectangle with PIL and paste it through the class mask."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        left, top, width, height = cv2.boundingRect(contour)
        area = (left, top, left + width, top + height)
        blurred = picture.crop(area).filter(ImageFilter.GaussianBlur(25 * degree))
        picture.paste(blurred, area[:2], class_mask.crop(area))


def _decode(data: bytes) -> BgrImage:
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), dtype=np.uint8)


def _decode_encode(encoded: bytes) -> bytes:
    return bytes(cv2.imencode(".jpg", _decode(encoded), [cv2.IMWRITE_JPEG_QUALITY, 95])[1])


def _interleaved_medians_ms(tasks: Mapping[K, Callable[[], Callable[[], object]]], repeat: int) -> dict[K, float]:
    """Median milliseconds of each task; the tasks take turns within each round, so that a change of load on the
    shared CPU hits them all alike and the ratios stay meaningful."""
    times: dict[K, list[float]] = {key: [] for key in tasks}
    for _ in range(repeat):
        for key, prepare in tasks.items():
            run = prepare()
            started = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - started)
    return {key: statistics.median(values) * 1000 for key, values in times.items()}


def format_table(rows: Sequence[dict[str, object]]) -> str:
    lines = [f"{'resolution':>10}  {'case':<5}  {'kernel':<10}  {'ms/frame':>9}  {'speed-up':>8}  {'of codec':>8}"]
    for row in rows:
        share = f"  (mask: {row['mask_share']:.0%} of the frame)" if "mask_share" in row else ""
        lines.append(
            f"{row['resolution']:>10}  {row['case']:<5}  {row['kernel']:<10}  {row['ms']:>9.2f}  "
            f"{row['vs_reference']:>7.1f}x  {row['share_of_codec']:>8.1%}{share}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m processor.bench.kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure; the median is reported (default 7)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    arguments = parser.parse_args(argv)
    rows = run_kernel_bench(repeat=arguments.repeat)
    sys.stdout.write((json.dumps(rows, indent=2) if arguments.json else format_table(rows)) + "\n")


if __name__ == "__main__":
    main()

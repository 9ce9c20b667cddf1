"""Throughput of the embedded default: `anonymizer image` on a folder of 1080p JPEG frames with several faces.

Writes ``frames`` crowd frames (faces of 32–240 px high, from the bundled samples) to a temporary folder, then runs
the CLI's batch path (read → decode → built-in faces + plates → blur → encode → write) with the default
configuration, and reports frames/s, CPU time per frame and faces found against the true count — beside the JPEG
decode + encode rate of the same frames on the same threads (the codec bound). Each detector setting is one row,
measured in the same run, so ratios compare.

Run: ``python -m processor.bench.embedded [--frames N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from processor.batch import anonymize_files, collect_files
from processor.bench.rows import format_rows
from processor.bench.scenes import crowd_frame
from processor.configuration import default_configuration
from processor.localizers import open_localizer
from processor.media import decode
from processor.settings import BuiltinSettings, Settings

FACE_HEIGHTS = [32, 40, 48, 64, 96, 140, 240]
SETTINGS_COMPARED: tuple[tuple[int, float], ...] = ((960, 0.2), (1280, 0.5), (1280, 0.2))
"""(face_max_side, face_threshold) pairs."""


def write_frames(folder: Path, count: int) -> int:
    """``count`` 1920×1080 JPEG crowd frames; returns the number of true faces in all."""
    faces = 0
    for index in range(count):
        frame, boxes = crowd_frame(FACE_HEIGHTS, seed=index)
        cv2.imwrite(str(folder / f"frame_{index:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        faces += len(boxes)
    return faces


def codec_rate(folder: Path, threads: int) -> float:
    """Frames/s of JPEG decode + encode (quality 95) over the folder, ``threads`` frames at once."""
    blobs = [path.read_bytes() for path in sorted(folder.glob("*.jpg"))]

    def round_trip(blob: bytes) -> None:
        pixels = decode(blob, max_pixels=10**9).pixels
        cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(round_trip, blobs))
    return len(blobs) / (time.perf_counter() - started)


async def pipeline_rate(folder: Path, out: Path, builtin: BuiltinSettings, jobs: int) -> dict[str, float]:
    settings = Settings(builtin=builtin)
    pairs = collect_files([folder], out).pairs
    async with open_localizer(settings) as localizer:
        await anonymize_files(
            pairs[:2], default_configuration(), localizer, settings, jobs=jobs, report=io.StringIO(), progress=False
        )  # warm-up: models load once
        cpu = time.process_time()
        summary = await anonymize_files(
            pairs, default_configuration(), localizer, settings, jobs=jobs, report=io.StringIO(), progress=False
        )
        cpu = time.process_time() - cpu
    return {
        "frames_per_s": summary.done / summary.seconds,
        "cpu_ms_per_frame": 1000 * cpu / max(summary.done, 1),
        "faces_found": summary.counts.get("face", 0),
        "failed": summary.failed,
    }


def run_embedded_bench(frames: int = 24, jobs: int = 4) -> list[dict[str, float | int | str]]:
    """One row per detector setting, plus the codec bound, all measured in one run."""
    rows: list[dict[str, float | int | str]] = []
    with tempfile.TemporaryDirectory(prefix="anonymizer-bench-") as temporary:
        folder, out = Path(temporary) / "frames", Path(temporary) / "out"
        folder.mkdir()
        true_faces = write_frames(folder, frames)
        workers = BuiltinSettings().workers
        rows.append({"setting": "codec bound (decode+encode)", "frames_per_s": codec_rate(folder, workers)})
        for max_side, threshold in SETTINGS_COMPARED:
            builtin = BuiltinSettings(face_max_side=max_side, face_threshold=threshold)
            measured = asyncio.run(pipeline_rate(folder, out, builtin, jobs))
            rows.append(
                {"setting": f"face_max_side={max_side} threshold={threshold}", "true_faces": true_faces, **measured}
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    rows = run_embedded_bench(arguments.frames, arguments.jobs)
    if arguments.json:
        json.dump(rows, sys.stdout, indent=2)
        return
    print(format_rows(rows, "setting"))  # noqa: T201


if __name__ == "__main__":
    main()

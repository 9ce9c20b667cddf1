"""Video benchmark: frames per second through the video path at 1080p, beside decoding + encoding alone.

A clip is made first (in a temporary folder, with PyAV): ``--frames`` frames of ``--size`` at 30 fps, each a wall of
the bundled portraits (8 faces about 150 px high) drifting sideways, plus a 440 Hz AAC tone. It is then processed,
in the same run, three ways:

- ``decode+encode``: the reader and writer alone (decode, BGR and back, H.264, audio copied): the floor;
- ``stub``: the whole video path with a zero-cost localizer (one fixed face box per frame, no JPEG copies), so the
  figure is the path's own cost (queues, threads, hiding, encoding);
- ``builtin faces``: the whole path with the built-in CenterFace detector (``builtin.workers`` threads), on every
  frame (``video.detect_every=1``), then on keyframes (``builtin faces, detect_every=N``: tracked in between);
- with ``--plates``, the same two with faces and plates (the default configuration).

Each figure is frames / wall seconds of one pass (open to close); the machine's other load shows in it, so compare
the rows of one run. Run: ``python -m processor.bench.video [--frames N] [--size 1920x1080] [--detect-every N]
[--plates] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from importlib import resources
from pathlib import Path

import av
import cv2
import numpy as np

from processor.configuration import builtin_entry, default_configuration
from processor.frames import BgrImage, Box, Frame, Localization
from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.settings import Settings, VideoSettings
from processor.video import anonymize_video
from processor.video.reader import DecodedFrame, VideoReader
from processor.video.writer import VideoWriter
from schemas.config import InferenceType, SensitiveInfo, UserConfiguration

FACES = UserConfiguration(sensitive_info=[builtin_entry("centerface", "face", InferenceType.detection)])


class StubLocalizer:
    """A zero-cost localizer: the same face box in every frame."""

    def needs_encoded_frames(self, entries: Sequence[SensitiveInfo]) -> bool:
        return False

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        return Localization(entry.class_name, (Box(800, 300, 950, 480, entry.class_name),), source="bench/stub")


def make_clip(path: Path, frames: int, size: tuple[int, int], fps: int = 30) -> None:
    """The benchmark clip (see the module docstring), encoded fast (x264 ultrafast) so that making it is quick."""
    wall = _portrait_wall(size)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "20"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=48000)
        assert isinstance(audio, av.AudioStream)  # noqa: S101 - narrows PyAV's union for mypy
        audio.layout = "mono"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(wall, 6 * index, axis=1), format="bgr24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000 * frames // fps) / 48000)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 48000, start, Fraction(1, 48000)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def _portrait_wall(size: tuple[int, int]) -> BgrImage:
    """The two bundled portraits, alternating, in two rows filling ``size`` (W, H)."""
    width, height = size
    row_height = height // 2
    portraits = []
    for name in ("astronaut.jpg", "grace_hopper.jpg"):
        data = (resources.files("processor") / "samples" / name).read_bytes()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"bundled sample {name} is unreadable")
        portraits.append(cv2.resize(image, (round(image.shape[1] * row_height / image.shape[0]), row_height)))
    row = np.hstack([portraits[i % 2] for i in range(width // min(p.shape[1] for p in portraits) + 2)])
    rows = [row[:, :width], np.roll(row, -portraits[0].shape[1] // 2, axis=1)[:, :width]]
    return np.ascontiguousarray(np.vstack(rows)[:height])


def transcode(src: Path, dst: Path, settings: VideoSettings) -> int:
    """Decode and encode only (the reader and writer, nothing in between); returns the frames written."""
    reader = VideoReader(src, max_pixels=10**9)
    writer = VideoWriter(dst, reader.info, reader.audio_streams, settings=settings, container_format="mp4")
    frames = 0
    try:
        while items := reader.read():
            for item in items:
                if isinstance(item, DecodedFrame):
                    writer.write(item)
                    frames += 1
                else:
                    writer.mux_audio([item])
        writer.close()
    finally:
        reader.close()
    return frames


async def run_video_bench(
    frames: int = 90, size: tuple[int, int] = (1920, 1080), *, detect_every: int = 5, plates: bool = False
) -> list[dict[str, object]]:
    """One row per way (see the module docstring): frames, seconds, frames per second, keyframes, and the ratio to
    the floor."""
    settings = Settings()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="anonymizer-bench-") as folder:
        src = Path(folder) / "clip.mp4"
        make_clip(src, frames, size)

        def record(way: str, count: int, seconds: float, keyframes: int | None = None) -> None:
            row: dict[str, object] = {"way": way, "frames": count, "seconds": round(seconds, 3)}
            row["fps"] = round(count / seconds, 2)
            if keyframes is not None:
                row["keyframes"] = keyframes
            rows.append(row)

        started = time.perf_counter()
        count = await asyncio.to_thread(transcode, src, Path(folder) / "floor.mp4", settings.video)
        record("decode+encode", count, time.perf_counter() - started)

        async def whole_path(
            way: str,
            localizer: StubLocalizer | BuiltinLocalizer,
            upload: bool | None,
            configuration: UserConfiguration = FACES,
            every: int = 1,
        ) -> None:
            result = await anonymize_video(
                src,
                Path(folder) / f"{len(rows)}.mp4",
                configuration,
                localizer,
                video=settings.video.model_copy(update={"detect_every": every}),
                output=settings.output,
                limits=settings.limits,
                upload_jpeg=upload,
            )
            record(way, result.frames, result.timings_ms["total"] / 1000, result.keyframes)

        await whole_path("stub", StubLocalizer(), upload=False)
        async with BuiltinLocalizer(settings.builtin) as builtin:
            await builtin.warm_up()
            await whole_path("builtin faces", builtin, upload=None)
            await whole_path(f"builtin faces, detect_every={detect_every}", builtin, None, every=detect_every)
            if plates:
                both = default_configuration()
                await whole_path("builtin faces+plates", builtin, None, both)
                way = f"builtin faces+plates, detect_every={detect_every}"
                await whole_path(way, builtin, None, both, detect_every)
    floor = float(str(rows[0]["fps"]))
    for row in rows:
        row["vs_decode_encode"] = round(float(str(row["fps"])) / floor, 3)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=90, help="frames in the clip (default 90: 3 s at 30 fps)")
    parser.add_argument("--size", default="1920x1080", help="W x H (default 1920x1080)")
    parser.add_argument("--detect-every", type=int, default=5, help="N of the keyframe rows (default 5)")
    parser.add_argument("--plates", action="store_true", help="also faces + plates (slow: plates on every frame)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    arguments = parser.parse_args(argv)
    width, height = (int(side) for side in arguments.size.lower().split("x"))
    size = (width, height)
    bench = run_video_bench(arguments.frames, size, detect_every=arguments.detect_every, plates=arguments.plates)
    rows = asyncio.run(bench)
    if arguments.json:
        print(json.dumps(rows, indent=2))  # noqa: T201
        return 0
    video = Settings().video
    print(  # noqa: T201
        f"video path, {arguments.frames} frames of {width}x{height}, x264 preset {video.preset} crf {video.crf}, "
        f"{video.frames_in_flight} frames in flight, tracking k={video.smoothing_frames}"
    )
    for row in rows:
        keyframes = f", {row['keyframes']} keyframes" if "keyframes" in row else ""
        print(  # noqa: T201
            f"  {row['way']:<40} {row['fps']:>7.2f} frames/s  ({row['frames']} frames in {row['seconds']:.2f} s"
            f"{keyframes}, {row['vs_decode_encode']:.2f}x decode+encode)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

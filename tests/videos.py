"""Test videos made with PyAV: moving synthetic content with a real face photo composited, and a sine tone.

Every frame is a pure function of its index (:meth:`Clip.frame`), so a test can compare what the processor wrote
with the exact pixels that went in, and knows where the face is in each frame (:meth:`Clip.face`). A row of blocks
in the top-left corner encodes the index (:func:`frame_index`), so a stub localizer, or a test reading the output,
can tell which frame it holds, even after lossy compression.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from processor.errors import InferenceUnavailable
from processor.frames import Box, Frame, Localization
from schemas.config import SensitiveInfo
from tests.frames import BgrImage, heads

_DRIFT = 240  # px of background drift before it repeats
_BIT, _BITS = 8, 6  # the index is written as 6 black or white 8x8 blocks, top left


@dataclass(frozen=True)
class Clip:
    """A synthetic clip: ``frames`` frames of ``size`` (W, H), upright, the astronaut's head sliding across."""

    frames: int = 48
    size: tuple[int, int] = (640, 360)
    fps: int = 24
    face_height: int = 110

    def _head(self) -> tuple[BgrImage, tuple[int, int, int, int]]:
        return _scaled_head(self.face_height)

    def _origin(self, index: int) -> tuple[int, int]:
        crop, _ = self._head()
        width, height = self.size
        travel = width - crop.shape[1] - 20
        x = 10 + round(travel * index / max(1, self.frames - 1))
        return x, (height - crop.shape[0]) // 2

    def frame(self, index: int) -> BgrImage:
        """The upright frame ``index``: drifting colour bands and a grid, the head pasted at its place."""
        width, _ = self.size
        shift = 3 * index % _DRIFT
        frame = _background(self.size)[:, shift : shift + width].copy()
        crop, _ = self._head()
        x, y = self._origin(index)
        frame[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
        for bit in range(_BITS):
            frame[:_BIT, bit * _BIT : (bit + 1) * _BIT] = 230 if index >> bit & 1 else 25
        return frame

    def face(self, index: int) -> tuple[int, int, int, int]:
        """The face's box (x1, y1, x2, y2) in the upright frame ``index``."""
        _, (x1, y1, x2, y2) = self._head()
        x, y = self._origin(index)
        return x + x1, y + y1, x + x2, y + y2


@functools.cache
def _background(size: tuple[int, int]) -> BgrImage:
    """Colour bands and a grid, ``_DRIFT`` px wider than the frame: frame i shows it shifted by 3i px (mod drift)."""
    width, height = size[0] + _DRIFT, size[1]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    background = np.empty((height, width, 3), np.uint8)
    background[..., 0] = 128 + 80 * np.sin(xs / 37.0) + 0 * ys
    background[..., 1] = 128 + 80 * np.cos(ys / 23.0) + 0 * xs
    background[..., 2] = 100 + 60 * np.sin((xs + ys) / 51.0)
    background[::40, :] = 255
    background[:, ::40] = 255
    background.flags.writeable = False
    return background


def frame_index(pixels: BgrImage) -> int:
    """The index (modulo 64) that :meth:`Clip.frame` wrote into the top-left corner of an upright frame."""
    blocks = (pixels[2 : _BIT - 2, bit * _BIT + 2 : (bit + 1) * _BIT - 2] for bit in range(_BITS))
    return sum(1 << bit for bit, block in enumerate(blocks) if block.mean() > 128)


@functools.cache
def _scaled_head(face_height: int) -> tuple[BgrImage, tuple[int, int, int, int]]:
    """The astronaut's head scaled so that the face is ``face_height`` px tall, and the face box in it."""
    head = heads()[0]
    x1, y1, x2, y2 = head.face
    factor = face_height / (y2 - y1)
    crop = np.asarray(cv2.resize(head.pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), np.uint8)
    return crop, (round(x1 * factor), round(y1 * factor), round(x2 * factor), round(y2 * factor))


def write_clip(
    path: Path,
    clip: Clip,
    *,
    audio: str | None = "aac",
    rotation: int = 0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    fast_start: bool = False,
    audio_seconds: float | None = None,
    gop_size: int | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Encode ``clip`` (H.264) with a 440 Hz tone (``audio``: an encoder name, or None; as long as the video unless
    ``audio_seconds`` says otherwise).

    :param rotation: display rotation, degrees counterclockwise; the stored pixels are turned the other way, so
        a player that honours the display matrix shows the upright clip.
    :param pts: explicit timestamps in ``time_base`` units (a variable frame rate); default: one per frame.
    :param gop_size: frames from one keyframe to the next (default: x264's, 250).
    :param tags: container metadata.
    """
    options = {"movflags": "+faststart"} if fast_start else {}
    with av.open(str(path), "w", options=options) as container:
        container.metadata.update(tags or {})
        video = container.add_stream("libx264", rate=clip.fps, options={"preset": "ultrafast", "crf": "18"})
        width, height = clip.size
        video.width, video.height = (height, width) if rotation % 180 else (width, height)
        video.pix_fmt = "yuv420p"
        if gop_size is not None:
            video.codec_context.gop_size = gop_size
        if time_base is not None:
            video.time_base = video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = _audio_stream(container, audio) if audio else None
        for index in range(clip.frames):
            pixels = np.ascontiguousarray(np.rot90(clip.frame(index), -(rotation // 90)))
            frame = av.VideoFrame.from_ndarray(pixels, format="bgr24")
            frame.pts = pts[index] if pts is not None else index
            if time_base is not None:
                frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, seconds=audio_seconds or clip.frames / clip.fps)


def write_audio_only(path: Path, seconds: float = 1.0) -> None:
    with av.open(str(path), "w") as container:
        _write_tone(container, _audio_stream(container, "aac"), seconds=seconds)


def _audio_stream(container: av.container.OutputContainer, codec: str) -> av.AudioStream:
    stream = container.add_stream(codec, rate=8000 if codec == "pcm_mulaw" else 48000)
    assert isinstance(stream, av.AudioStream)
    stream.layout = "mono"
    return stream


def _write_tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(round(rate * seconds)) / rate)).astype(np.float32)
    for start in range(0, len(samples), 1024):
        chunk = samples[start : start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


class ClipLocalizer:
    """A :class:`~processor.inference.base.Localizer` that knows a clip: it reads each frame's index from its pixels
    and answers the true face box (none for other labels), so video tests need no detector.

    :param miss: frame indexes where it finds nothing (a detector's misses).
    :param delay_s: seconds to wait before answering frame i (to shuffle completion order).
    :param fail_at: frame indexes at which it raises :class:`~processor.errors.InferenceUnavailable`.
    """

    def __init__(
        self,
        clip: Clip,
        *,
        miss: Collection[int] = (),
        delay_s: Callable[[int], float] | None = None,
        fail_at: Collection[int] = (),
    ) -> None:
        self.clip, self.miss, self.delay_s, self.fail_at = clip, frozenset(miss), delay_s, frozenset(fail_at)
        self.seen: list[int] = []
        self.calls: list[tuple[int, str]] = []  # (frame index, entry's label) per call
        self.shapes: set[tuple[int, ...]] = set()
        self.uploads: set[int] = set()  # sizes of Frame.encoded
        self.running = self.peak = 0

    def needs_encoded_frames(self, entries: Sequence[SensitiveInfo]) -> bool:
        return True  # it records Frame.encoded, as an HTTP client would upload it

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        index = frame_index(frame.pixels)
        self.seen.append(index)
        self.calls.append((index, entry.class_name))
        self.shapes.add(frame.pixels.shape)
        self.uploads.add(len(frame.encoded))
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.delay_s is not None:
                await asyncio.sleep(self.delay_s(index))
            if index in self.fail_at:
                raise InferenceUnavailable(f"stub: frame {index} fails")
            if entry.class_name != "face" or index in self.miss:
                return Localization(entry.class_name, source="test/clip")
            x1, y1, x2, y2 = self.clip.face(index)
            return Localization("face", (Box(x1, y1, x2, y2, "face", 0.9),), source="test/clip")
        finally:
            self.running -= 1

"""Reading a video with PyAV (ffmpeg): upright BGR frames and audio packets, in file order, one at a time.

Frames are turned upright by the stream's display matrix (so detectors see faces the right way up; the writer
turns them back and keeps the matrix). Audio packets are never decoded. Nothing is held beyond the items being
returned, whatever the video's length. Synchronous: the caller runs it in a worker thread.

A corrupt stretch does not stop the reading: a video packet the decoder refuses gives no picture (counted in
:attr:`VideoReader.dropped`; the frames around it keep their timestamps, so the timing stays right), and every
frame decoded after it up to the next keyframe is marked ``damaged``: it is predicted from a broken reference,
may show pieces of other frames in the wrong place, and detectors cannot be trusted on it (the pipeline
blackens it). A frame ffmpeg itself flags as corrupt is damaged too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeAlias, cast

import av
import av.error
import numpy as np
from av.audio.stream import AudioStream
from av.packet import Packet
from av.sidedata.sidedata import SideData
from av.sidedata.sidedata import Type as SideDataType
from av.stream import Disposition, Stream
from av.video.stream import VideoStream
from PIL import Image, UnidentifiedImageError

from processor.errors import ContainerNotAllowed, ImageTooLarge, ObjectNotFound, VideoTooLong, VideoUndecodable
from processor.frames import BgrImage
from processor.video.colour import takes_opencv, to_bgr

log = logging.getLogger(__name__)

Item: TypeAlias = "DecodedFrame | Packet[Stream]"
"""What the reader gives: a decoded video frame or an audio packet (PyAV's Packet is generic in its stubs only)."""
_Raw: TypeAlias = "av.VideoFrame | Packet[Stream]"

DEMUX_OPTIONS = (
    # Only the demuxers of single-file containers: no hls, dash, concat, image2 patterns, or any other demuxer that
    # opens further files or URLs (ffmpeg refuses the file before the demuxer reads a byte of it).
    ("format_whitelist", "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,flv,asf,mpeg,h264,hevc"),
    ("protocol_whitelist", "file"),  # and whatever is opened, nested opens included, is a local file only
)
_REFERENCE_MARKERS = (b"#EXTM3U", b"ffconcat", b"<?xml", b"<MPD", b"file ")
_FALLBACK_RATE = Fraction(25)  # for a stream that states no frame rate at all (raw elementary streams)
_DURATION_SLACK_S = 1.0  # the header's duration and the last timestamp may differ by a frame or so
_TRUNCATION_SLACK = 0.01  # a stream ending 3 frames or 1 % before its stated duration was cut short


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One frame, upright, with its presentation time in the source's time base."""

    index: int
    pixels: BgrImage
    pts: int
    duration: int
    damaged: bool = False  # decoded from a broken reference or flagged corrupt: never shown in the clear


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the writer needs to reproduce the source's geometry, timing and colour tags."""

    width: int  # as stored (before the display matrix)
    height: int
    quarter_turns: int  # counterclockwise turns (np.rot90's k) from stored to upright: 0..3
    display_matrix: tuple[int, ...] | None
    time_base: Fraction
    rate: Fraction
    frames: int | None  # from the header, or estimated from its duration; None if unknown
    duration_s: float | None
    codec: str
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int
    opencv_colour: bool  # frames convert through OpenCV's I420 path (processor.video.colour)

    @property
    def rotation(self) -> int:
        """Degrees counterclockwise a player turns the stored picture (0, 90, 180, 270)."""
        return self.quarter_turns * 90


class VideoReader:
    """An opened video: :attr:`info`, :attr:`audio_streams`, then :meth:`read` until it returns nothing.

    Raises, when opening: ObjectNotFound (no such file), VideoUndecodable (not a video, truncated, no video
    stream, a codec this ffmpeg cannot decode), ImageTooLarge (frames above ``max_pixels``), VideoTooLong.
    """

    def __init__(self, path: Path, *, max_pixels: int, max_duration_s: float | None = None) -> None:
        self._path = path
        self._max_duration_s = max_duration_s
        try:
            self._container = av.open(str(path), mode="r", options=dict(DEMUX_OPTIONS))
        except FileNotFoundError as error:
            raise ObjectNotFound(f"{path}: no such file") from error
        except (av.error.FFmpegError, OSError) as error:
            image = _image_format(path)
            if image is not None:
                raise VideoUndecodable(f"{path.name}: an image ({image}), not a video") from None
            if _is_reference_format(path):
                raise ContainerNotAllowed(
                    f"{path.name}: a playlist or list of other files (HLS, DASH, ffconcat …) is not a video; "
                    "refused, since its demuxer would open other files"
                ) from None
            raise VideoUndecodable(
                f"{path.name}: not a readable video ({_size(path)}; not a video, or truncated): {_reason(error)}"
            ) from error
        try:
            self._video = self._video_stream()
            self.audio_streams: tuple[AudioStream, ...] = tuple(
                stream for stream in self._container.streams.audio if stream.codec_context is not None
            )
            self._check_size(max_pixels)
            duration_s = self._duration_s()
            if max_duration_s is not None and duration_s is not None and duration_s > max_duration_s:
                raise VideoTooLong(_too_long(duration_s, max_duration_s))
            self._packets = self._container.demux(self._video, *self.audio_streams)
            self._frames = 0
            self._packets_in = 0  # video packets with data given to the decoder
            self._damaged = False  # a packet was refused since the last keyframe
            self._last_pts: int | None = None
            self._last_duration = 0
            self._backlog: list[Item] = []
            first, frame = self._first_frame()
            self.info = self._describe(frame, duration_s)
            self._step = max(1, round(1 / (self.info.rate * self.info.time_base)))  # one frame, in the time base
            self._backlog = [self._convert(item) if isinstance(item, av.VideoFrame) else item for item in first]
        except BaseException:
            self._container.close()
            raise

    @property
    def metadata(self) -> dict[str, str]:
        """The container's tags (creation time, an MP4's GPS ``location`` …) without pictures (see
        :func:`without_pictures`)."""
        return without_pictures(self._container.metadata)

    def read(self) -> list[Item]:
        """The next frames and audio packets in file order; an empty list at the end of the file."""
        if self._backlog:
            items, self._backlog = self._backlog, []
            return items
        items = [self._convert(item) if isinstance(item, av.VideoFrame) else item for item in self._next_items()]
        if not items:
            self._check_complete()
        return items

    @property
    def dropped(self) -> int:
        """Video packets that gave no picture (the decoder refused them, or lost them with a refused one); exact
        once :meth:`read` has returned nothing (before, frames still inside the decoder count too)."""
        return max(0, self._packets_in - self._frames)

    def close(self) -> None:
        self._container.close()

    def _next_items(self) -> list[_Raw]:
        try:
            for packet in self._packets:
                if packet.is_corrupt:  # ffmpeg's flag for a packet cut short, as at the end of a truncated file
                    raise VideoUndecodable(
                        f"{self._path.name}: truncated or corrupt: an incomplete {packet.stream.type} packet "
                        f"after {self._frames} frame(s)"
                    )
                if packet.stream.type == "audio":
                    if packet.size:  # zero-size packets only mark the end of a stream
                        return [packet]
                    continue
                frames = self._decode(packet)
                if frames:
                    return frames
        except av.error.FFmpegError as error:
            raise VideoUndecodable(
                f"{self._path.name}: corrupt or truncated video after {self._frames} frame(s): {_reason(error)}"
            ) from error
        return []

    def _decode(self, packet: Packet[Stream]) -> list[_Raw]:
        """The video frames of ``packet``; none when the decoder refuses it (then later frames are damaged)."""
        self._packets_in += 1 if packet.size else 0
        try:
            decoded = packet.decode()
        except av.error.FFmpegError as error:
            if packet.size == 0:  # the flush at the end of the stream: nothing left to lose
                return []
            self._damaged = True
            log.warning("%s: video packet at pts %s refused by the decoder: %s", self._path.name, packet.pts, error)
            return []
        frames: list[_Raw] = []
        for frame in decoded:
            if isinstance(frame, av.VideoFrame):
                self._damaged = self._damaged and not frame.key_frame
                frames.append(frame)
        return frames

    def _check_complete(self) -> None:
        """At the end: a video stream that stops well before its header's duration was cut short."""
        stream, info = self._video, self.info
        expected_s = stated_duration_s(stream.duration, info.time_base, stream.metadata)
        if expected_s is None or self._last_pts is None:
            return  # e.g. MPEG-TS states none (a cut one is a shorter one); incomplete packets are caught anyway
        start = stream.start_time or 0
        ended_s = float((self._last_pts + self._last_duration - start) * info.time_base)
        if expected_s - ended_s > max(3 / float(info.rate), _TRUNCATION_SLACK * expected_s):
            raise VideoUndecodable(
                f"{self._path.name}: truncated: the video stops at {ended_s:.2f} s of the {expected_s:.2f} s "
                f"its header states ({self._frames} frame(s) read)"
            )

    def _first_frame(self) -> tuple[list[_Raw], av.VideoFrame]:
        """Items up to the first video frame (which carries the display matrix), and that frame."""
        items: list[_Raw] = []
        while batch := self._next_items():
            items.extend(batch)
            if isinstance(last := batch[-1], av.VideoFrame):
                return items, last
        raise VideoUndecodable(f"{self._path.name}: the video stream holds no decodable frame (empty or truncated)")

    def _video_stream(self) -> VideoStream:
        container = self._container
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise VideoUndecodable(f"{self._path.name}: an image ({container.format.name}), not a video")
        streams = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
        if not streams:
            found = ", ".join(f"{s.type} ({_codec_name(s)})" for s in container.streams) or "none"
            raise VideoUndecodable(f"{self._path.name}: no video stream (streams: {found})")
        stream = streams[0]
        if stream.codec_context is None:
            raise VideoUndecodable(
                f"{self._path.name}: unsupported video codec: this ffmpeg build has no decoder for video stream "
                f"#{stream.index}"
            )
        stream.thread_type = "AUTO"
        return stream

    def _check_size(self, max_pixels: int) -> None:
        width, height = self._video.codec_context.width, self._video.codec_context.height
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"{self._path.name}: frames are {width}×{height}, above the limit of {max_pixels / 1e6:.1f} MP"
            )

    def _duration_s(self) -> float | None:
        stream = self._video
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if self._container.duration is not None:
            return self._container.duration / av.time_base
        return None

    def _describe(self, frame: av.VideoFrame, duration_s: float | None) -> VideoInfo:
        stream, context = self._video, self._video.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or _FALLBACK_RATE
        frames = stream.frames or (round(duration_s * rate) if duration_s else None)
        # A mapping by type: PyAV 18.1.1 iterates it by key, 18.1.0 by value, so look the type up, never iterate.
        side_data = cast("Mapping[SideDataType, SideData]", frame.side_data)  # the stub types it as one SideData
        matrix = side_data.get(SideDataType.DISPLAYMATRIX)
        return VideoInfo(
            width=frame.width,
            height=frame.height,
            quarter_turns=round(frame.rotation / 90) % 4 if matrix is not None else 0,
            display_matrix=tuple(int(v) for v in np.frombuffer(bytes(matrix), np.int32)) if matrix else None,
            time_base=stream.time_base or 1 / rate,
            rate=rate,
            frames=frames or None,
            duration_s=duration_s,
            codec=context.name,
            colorspace=frame.colorspace,
            color_range=frame.color_range,
            color_primaries=context.color_primaries,
            color_trc=context.color_trc,
            opencv_colour=takes_opencv(frame),
        )

    def _convert(self, frame: av.VideoFrame) -> DecodedFrame:
        """Upright BGR pixels and a strictly increasing timestamp (x264 refuses anything else)."""
        info = self.info
        decoded = to_bgr(frame, opencv=info.opencv_colour)
        pixels: BgrImage = (
            np.ascontiguousarray(np.rot90(decoded, info.quarter_turns)) if info.quarter_turns else decoded
        )
        pts = frame.pts
        if pts is None:  # no timestamps (raw streams): one nominal frame after the last
            pts = 0 if self._last_pts is None else self._last_pts + self._step
        elif self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        if self._max_duration_s is not None:
            seconds = float((pts - (self._video.start_time or 0)) * info.time_base)
            if seconds > self._max_duration_s + _DURATION_SLACK_S:
                raise VideoTooLong(_too_long(seconds, self._max_duration_s, at_least=True))
        self._last_pts, self._last_duration = pts, frame.duration or self._step
        self._frames += 1
        damaged = self._damaged or frame.is_corrupt
        return DecodedFrame(self._frames - 1, pixels, pts, frame.duration or 0, damaged)


_PICTURE_TAG_WORDS = ("picture", "cover", "covr", "apic", "thumb", "artwork")
MAX_TAG_CHARS = 1024
"""Longer tag values are dropped: past a title or a comment, a tag is a blob (a base64 image, a muxer's payload)."""


def stated_duration_s(duration: int | None, time_base: Fraction, tags: Mapping[str, str]) -> float | None:
    """What the file says the video stream lasts: its duration field, else the ``DURATION`` tag Matroska muxers
    write per stream (``HH:MM:SS.fffffffff``); None when neither is there or the tag does not parse."""
    if duration is not None:
        return float(duration * time_base)
    hours, _, rest = tags.get("DURATION", "").partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def without_pictures(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags a kept container metadata may carry: none that holds a picture (``METADATA_BLOCK_PICTURE``, cover art,
    thumbnails — the unanonymized frame an app shows as the video's icon) and no value over MAX_TAG_CHARS."""
    return {
        name: value
        for name, value in tags.items()
        if len(value) <= MAX_TAG_CHARS and not any(word in name.lower() for word in _PICTURE_TAG_WORDS)
    }


def _codec_name(stream: av.stream.Stream) -> str:
    return stream.codec_context.name if stream.codec_context is not None else "unknown codec"


def _reason(error: BaseException) -> str:
    if isinstance(error, av.error.FFmpegError | OSError) and error.strerror:
        return str(error.strerror)
    return str(error)


def _image_format(path: Path) -> str | None:
    """The image format of ``path`` from its header (Pillow), or None: ffmpeg's image demuxers are not allowed."""
    try:
        with Image.open(path) as header:
            return (header.format or "image").lower()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _is_reference_format(path: Path) -> bool:
    """Whether ``path`` starts like a playlist or a list of files (HLS, DASH MPD, ffconcat), BOM and blanks aside."""
    try:
        with path.open("rb") as file:
            head = file.read(64).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    return head.startswith(_REFERENCE_MARKERS)


def _size(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return "size unknown"
    return f"{size} bytes" if size else "an empty file"


def _too_long(duration_s: float, limit_s: float, *, at_least: bool = False) -> str:
    length = f"at least {duration_s:.0f} s" if at_least else f"{duration_s:.0f} s"
    return (
        f"the video lasts {length}, above the limit of {limit_s:.0f} s (video.max_duration_s): "
        "split it into shorter parts, or anonymize it with `anonymizer video`"
    )

"""Writing a video with PyAV (ffmpeg): H.264 (libx264, yuv420p) with the source's timing, geometry and audio.

Each frame is turned back to the stored orientation and encoded at the source's time base and timestamps (so a
variable frame rate and the duration survive), at its size (cropped to even sides, which 4:2:0 needs), with its
display matrix and colour tags. Audio packets are muxed unchanged, or re-encoded to AAC when the container cannot
hold their codec. Container tags (creation time, an MP4's GPS location) are dropped unless passed in.
Synchronous: the caller runs it in a worker thread (never the reader's: they share no codec context).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import av
import av.container
import av.error
import numpy as np
from av.audio.stream import AudioStream
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from processor.errors import InvalidConfiguration
from processor.settings import VideoSettings
from processor.video.colour import to_yuv420p
from processor.video.reader import DecodedFrame, VideoInfo

log = logging.getLogger(__name__)

CONTAINERS: Mapping[str, tuple[str, str]] = {
    ".mp4": ("mp4", "video/mp4"),
    ".m4v": ("mp4", "video/mp4"),
    ".mov": ("mov", "video/quicktime"),
    ".mkv": ("matroska", "video/x-matroska"),
}
"""Output suffix → (ffmpeg muxer, content type)."""


def output_container(dst: Path) -> tuple[str, str]:
    """(ffmpeg muxer, content type) for the output path ``dst``; InvalidConfiguration for other suffixes."""
    try:
        return CONTAINERS[dst.suffix.lower()]
    except KeyError:
        raise InvalidConfiguration([f"output {dst.name}: the suffix must be one of {', '.join(CONTAINERS)}"]) from None


class VideoWriter:
    """H.264 (yuv420p) into ``container_format`` at ``path``, plus the given audio streams' packets.

    Call :meth:`write` per frame in order (upright pixels, as the reader gave them), :meth:`mux_audio` for the
    audio packets, then :meth:`close`; :meth:`abort` on failure. Container metadata (creation time, GPS
    location in an MP4's udta) is dropped unless ``metadata`` brings some back.
    """

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        audio: Sequence[AudioStream],
        *,
        settings: VideoSettings,
        container_format: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self._info = info
        options = {"movflags": "+faststart"} if container_format in ("mp4", "mov") else {}
        self._container = av.open(str(path), mode="w", format=container_format, options=options)
        try:
            self._container.metadata.update(metadata or {})
            self._video = self._video_stream(settings)
            self._audio = {source.index: _AudioOutput(self._container, source) for source in audio}
        except BaseException:
            self._container.close()
            raise

    @property
    def audio_codecs(self) -> list[str]:
        """Per audio stream: its codec, and whether it was copied or re-encoded."""
        return [output.description for output in self._audio.values()]

    def _video_stream(self, settings: VideoSettings) -> VideoStream:
        info = self._info
        stream = self._container.add_stream(
            "libx264", rate=info.rate, options={"crf": str(settings.crf), "preset": settings.preset}
        )
        stream.width, stream.height = info.width - info.width % 2, info.height - info.height % 2  # 4:2:0 needs even
        stream.pix_fmt = "yuv420p"
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.thread_type = "FRAME"
        context = stream.codec_context
        context.colorspace, context.color_range = info.colorspace, info.color_range
        context.color_primaries, context.color_trc = info.color_primaries, info.color_trc
        if info.display_matrix is not None:
            stream.set_display_matrix(info.display_matrix)
        return stream

    def write(self, frame: DecodedFrame) -> None:
        info = self._info
        pixels = np.rot90(frame.pixels, -info.quarter_turns) if info.quarter_turns else frame.pixels
        pixels = np.ascontiguousarray(pixels[: self._video.height, : self._video.width])
        picture = to_yuv420p(
            pixels, opencv=info.opencv_colour, colorspace=info.colorspace, color_range=info.color_range
        )
        picture.pts, picture.time_base, picture.duration = frame.pts, info.time_base, frame.duration
        self._container.mux(self._video.encode(picture))

    def mux_audio(self, packets: Sequence[Packet[Stream]]) -> None:
        for packet in packets:
            self._container.mux(self._audio[packet.stream.index].convert(packet))

    def close(self) -> None:
        """Flush the encoders and finish the file (moov atom moved to the front for MP4/MOV)."""
        self._container.mux(self._video.encode(None))
        for output in self._audio.values():
            self._container.mux(output.flush())
        self._container.close()

    def abort(self) -> None:
        try:
            self._container.close()
        except av.error.FFmpegError as error:  # the file is deleted anyway
            log.debug("closing an aborted video output: %s", error)


class _AudioOutput:
    """One audio stream of the output: packets copied, or re-encoded to AAC if the container cannot hold them."""

    def __init__(self, container: av.container.OutputContainer, source: AudioStream) -> None:
        codec = source.codec_context.name
        self._copy = codec in container.supported_codecs
        if self._copy:
            self.stream = container.add_stream_from_template(source)
            self.description = f"{codec} (copied)"
        else:
            self.stream = container.add_stream("aac", rate=source.codec_context.sample_rate)
            self.stream.layout = source.codec_context.layout
            self.description = f"{codec} re-encoded as aac (not allowed in {container.format.name})"
            log.info("audio %s cannot go into %s: re-encoding it as AAC", codec, container.format.name)
        if source.language:
            self.stream.metadata["language"] = source.language

    def convert(self, packet: Packet[Stream]) -> list[Packet[Stream]]:
        if self._copy:
            packet.stream = self.stream
            return [packet]
        frames = [frame for frame in packet.decode() if isinstance(frame, av.AudioFrame)]
        return [out for frame in frames for out in self.stream.encode(frame)]

    def flush(self) -> list[Packet[Stream]]:
        return [] if self._copy else self.stream.encode(None)

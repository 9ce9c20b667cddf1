"""A video's path: decode → localize (keyframes, several frames at once) → track → hide → encode, streamed.

Each frame goes through the image path's own steps (:func:`processor.pipeline.localize_all` and
:func:`processor.pipeline.hide_regions`). The tracked labels (detection entries in ``video.smoothing_labels``)
are detected on keyframes only (:mod:`processor.video.keyframes`; every frame when ``video.detect_every`` is 1)
and hidden in every frame from their tracks (:mod:`processor.video.tracking`); the other entries (masks, and
labels not tracked) are detected on every frame. Memory is bounded whatever the video's length: at most
``frames_in_flight`` decoded frames wait in the queue, and ``frames_in_flight + lookahead`` frames are held between
decoding and writing: frame t is written once the keyframes up to t + reach are final, reach = N - 1 + k
(N = ``detect_every``, k = ``smoothing_frames``), lookahead = reach, plus N when N > 1 (so that the keyframe after
t + reach is decoded and the frames between can still be detected). Localizing runs for up to
``frames_in_flight`` frames at once; frames are written in order. Decoding and encoding run in worker threads next
to the event loop, each on its own container.

Privacy first when a frame cannot be processed: a frame the reader marks damaged (decoded after a packet the
decoder refused) or on which a detector failed (an inference service unavailable after its retries, a model
error) is written solid black, never in the clear, and counted (``frames_blackened``; packets that gave no
picture at all are ``frames_dropped``). The video still fails when such frames are more than
``video.max_bad_frame_ratio`` of its frames, or all of them: with the detector's error (an unavailable service
is transient, so the whole video is retried later) or VideoUndecodable. A PermanentError from a detector (an
unknown label, a rejected request) concerns every frame alike and fails the video at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from av.packet import Packet
from av.stream import Stream

from processor.errors import PermanentError, ProcessorError, VideoUndecodable
from processor.frames import Frame, Localization
from processor.inference.base import Localizer
from processor.media import encode
from processor.pipeline import hide_regions, localize_all
from processor.settings import LimitsSettings, OutputSettings, VideoSettings
from processor.video.keyframes import Signature, needs_middle, scene_cut
from processor.video.keyframes import signature as keyframe_signature
from processor.video.reader import DecodedFrame, Item, VideoReader
from processor.video.result import ProgressCallback, Tally, VideoProgress, VideoResult
from processor.video.tracking import Observed, boxes_at
from processor.video.writer import VideoWriter, output_container
from schemas.config import InferenceType, UserConfiguration
from schemas.results import LabelSummary

T = TypeVar("T")
log = logging.getLogger(__name__)

_AUDIO_BACKLOG = 256  # audio packets (about 5 s of AAC) held at most before they are muxed ahead of the video


async def anonymize_video(
    src: Path,
    dst: Path,
    configuration: UserConfiguration,
    localizer: Localizer,
    *,
    video: VideoSettings,
    output: OutputSettings,
    limits: LimitsSettings,
    max_duration_s: float | None = None,
    progress: ProgressCallback | None = None,
    upload_jpeg: bool | None = None,
) -> VideoResult:
    """Anonymize the video file ``src`` into ``dst`` (H.264; container from ``dst``'s suffix: .mp4, .m4v, .mov,
    .mkv). ``dst`` appears complete or not at all (written under a temporary name, then renamed).

    :param max_duration_s: refuse longer videos (VideoTooLong); None = no limit.
    :param progress: called after every frame written.
    :param upload_jpeg: give localizers a JPEG copy of each frame (``Frame.encoded``), which HTTP inference
        services upload. None = only when an entry is routed to one (built-in models read pixels only).
    :raises: PermanentError (VideoUndecodable, VideoTooLong, UnknownLabel, ...) or TransientError (an inference
        service unavailable): the video fails as a whole, nothing is left at ``dst``.
    """
    container_format, _ = output_container(dst)
    upload = localizer.needs_encoded_frames(configuration.sensitive_info) if upload_jpeg is None else upload_jpeg
    started = time.perf_counter()
    open_reader = functools.partial(VideoReader, src, max_pixels=limits.max_pixels, max_duration_s=max_duration_s)
    reader = await asyncio.to_thread(open_reader)
    partial = dst.with_name(f".{dst.stem}.{uuid.uuid4().hex[:8]}.partial{dst.suffix}")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        open_writer = functools.partial(
            VideoWriter,
            partial,
            reader.info,
            reader.audio_streams if video.keep_audio else (),
            settings=video,
            container_format=container_format,
            metadata=reader.metadata if output.keep_metadata else None,
        )
        writer = await asyncio.to_thread(open_writer)
        flow = _Flow(reader, writer, configuration, localizer, video=video, output=output, upload=upload)
        try:
            await flow.run(started, progress)
            flow.check_bad_frames(final=True)
            await _in_thread(writer.close)
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
        await asyncio.to_thread(reader.close)
    elapsed = time.perf_counter() - started
    info, tally = reader.info, flow.tally
    return VideoResult(
        frames=tally.frames,
        width=info.width,
        height=info.height,
        rotation=info.rotation,
        frame_rate=float(info.rate),
        duration_s=info.duration_s,
        container=container_format,
        audio=writer.audio_codecs,
        counts=dict(tally.counts),
        smoothed=dict(tally.smoothed),
        frames_with=dict(tally.frames_with),
        labels=tally.labels,
        timings_ms={"total": _ms(elapsed), "localize_sum": _ms(tally.localize_s), "write_sum": _ms(tally.write_s)},
        processing_fps=round(tally.frames / elapsed, 3) if elapsed else 0.0,
        frames_blackened=tally.blackened,
        frames_dropped=reader.dropped,
        keyframes=tally.keyframes,
        frames_tracked=tally.frames_tracked,
        frames_detected=dict(tally.frames_detected),
        configuration_hash=configuration.digest(),
    )


@dataclass(slots=True)
class _Held:
    """A decoded frame waiting to be written, and the detections running on it."""

    frame: DecodedFrame
    tasks: list[asyncio.Task[dict[int, Localization] | None]] = field(default_factory=list)
    key: bool = False  # the tracked entries' detectors run on it


class _Flow:
    """One video's frames between the reader and the writer (see the module docstring for the bounds)."""

    def __init__(
        self,
        reader: VideoReader,
        writer: VideoWriter,
        configuration: UserConfiguration,
        localizer: Localizer,
        *,
        video: VideoSettings,
        output: OutputSettings,
        upload: bool,
    ) -> None:
        self._reader, self._writer = reader, writer
        self._entries, self._localizer = configuration.sensitive_info, localizer
        self._video, self._output, self._upload = video, output, upload
        tracked = {
            index
            for index, entry in enumerate(self._entries)
            if entry.inference_type is InferenceType.detection and entry.class_name in video.smoothing_labels
        }
        self._tracked = sorted(tracked)  # detected on keyframes, tracked in between
        self._every = [index for index in range(len(self._entries)) if index not in tracked]  # detected every frame
        self._every_n = video.detect_every if self._tracked else 1
        self._reach = self._every_n - 1 + video.smoothing_frames
        self._lookahead = self._reach if self._every_n == 1 else self._reach + self._every_n
        self._decoded: asyncio.Queue[list[Item]] = asyncio.Queue(maxsize=video.frames_in_flight)
        self._slots = asyncio.Semaphore(video.frames_in_flight)
        self._pending: deque[_Held] = deque()
        self._history: deque[tuple[int, list[Localization] | None]] = deque()  # keyframes written, 2 reach back
        self._since_key = self._every_n  # frames decoded since the last keyframe
        self._after_damage = False
        self._signature: Signature | None = None
        self._settled: tuple[int, list[Localization] | None] = (-1, None)  # keyframe up to which all are final
        self._all_settled = self._decoding_done = self._idle = False
        self._keyframe_added = asyncio.Event()
        self._progressed = asyncio.Condition()  # self._settled moved on
        self._audio: list[Packet[Stream]] = []
        self._failures: list[Exception] = []  # what detectors raised on frames that were then blackened
        self._damaged = 0  # frames the reader marked damaged
        self.tally = Tally()

    async def run(self, started: float, progress: ProgressCallback | None) -> None:
        """Every frame through, in order; the first failure stops everything and is raised (see _first_failure)."""
        self._started, self._progress = started, progress
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._decode())
                group.create_task(self._settle())
                while items := await self._decoded.get():
                    for item in items:
                        if isinstance(item, DecodedFrame):
                            self._pending.append(self._schedule(item))
                        elif self._video.keep_audio:
                            self._audio.append(item)
                    while len(self._pending) >= self._video.frames_in_flight + self._lookahead:
                        await self._write_next()
                    if len(self._audio) >= _AUDIO_BACKLOG:  # audio running ahead of the video (or after its end)
                        audio, self._audio = self._audio, []
                        await _in_thread(self._writer.mux_audio, audio)
                self._decoding_done = True
                self._keyframe_added.set()
                while self._pending:
                    await self._write_next()
                await _in_thread(self._writer.mux_audio, self._audio)
        except ExceptionGroup as failures:  # a TaskGroup's wrapper: raise what actually went wrong
            raise _first_failure(failures) from None

    async def _decode(self) -> None:
        while items := await _in_thread(self._reader.read):
            await self._decoded.put(items)
        await self._decoded.put([])

    def _schedule(self, frame: DecodedFrame) -> _Held:
        """Start the detectors ``frame`` needs: every entry on a keyframe, else those not tracked (see
        :mod:`processor.video.keyframes`); a damaged frame gets none (it is blackened)."""
        held = _Held(frame)
        if frame.damaged:
            self._damaged += 1
            self.check_bad_frames()
            self._after_damage, self._signature = True, None
            return held
        cut = False
        if self._every_n > 1:
            signature = keyframe_signature(frame.pixels)
            cut = self._signature is not None and scene_cut(self._signature, signature)
            self._signature = signature
        self._since_key += 1
        if self._since_key >= self._every_n or self._after_damage or cut:
            held.key, self._since_key = True, 0
        self._after_damage = False
        if cut and self._pending and not self._pending[-1].key and not self._pending[-1].frame.damaged:
            self._detect_tracked(self._pending[-1])  # the last frame of the scene before: no interpolation across
        which = list(range(len(self._entries))) if held.key else self._every
        if which:
            held.tasks.append(self._group.create_task(self._locate(frame, which)))
        if held.key:
            self._keyframe_added.set()
        return held

    def _detect_tracked(self, held: _Held) -> None:
        held.key = True
        held.tasks.append(self._group.create_task(self._locate(held.frame, self._tracked)))
        self._keyframe_added.set()

    async def _locate(self, frame: DecodedFrame, which: Sequence[int]) -> dict[int, Localization] | None:
        """What the detectors of entries ``which`` found in ``frame``; None when it is to be blackened (a detector
        failed)."""
        async with self._slots:
            began = time.perf_counter()
            jpeg = b""
            if self._upload:
                jpeg = await asyncio.to_thread(encode, frame.pixels, "jpeg", jpeg_quality=self._output.jpeg_quality)
            entries = [self._entries[index] for index in which]
            try:
                found = await localize_all(Frame(frame.pixels, jpeg, "jpeg"), entries, self._localizer)
            except PermanentError:
                raise
            except Exception as error:  # noqa: BLE001 - this frame only: blackened, counted, bounded by the ratio
                log.warning("frame %d: a detector failed, the frame is blackened: %s", frame.index, error)
                self._failures.append(error)
                self.check_bad_frames()
                return None
            finally:
                self.tally.localize_s += time.perf_counter() - began
            return dict(zip(which, found, strict=True))

    def check_bad_frames(self, *, final: bool = False) -> None:
        """Raise once the frames that cannot be processed are too many (see the module docstring): as soon as they
        exceed the ratio of the header's frame count, and at the end (``final``) of the frames actually read."""
        bad = self._damaged + len(self._failures) + (self._reader.dropped if final else 0)
        total = self.tally.frames + self._reader.dropped if final else self._reader.info.frames
        if not bad or total is None or (bad <= self._video.max_bad_frame_ratio * total and bad < total):
            return
        if len(self._failures) > self._damaged + (self._reader.dropped if final else 0):
            raise self._failures[0]
        raise VideoUndecodable(
            f"{bad} of {total} frames cannot be processed (corrupt, or a detector failed), above the limit of "
            f"{self._video.max_bad_frame_ratio:.0%} (video.max_bad_frame_ratio)"
        )

    async def _found(self, held: _Held) -> list[Localization] | None:
        """Every entry's localization in the frame (empty for detectors not run on it); None when it is blackened."""
        if held.frame.damaged:
            return None
        merged: dict[int, Localization] = {}
        for task in list(held.tasks):
            found = await task
            if found is None:
                return None
            merged.update(found)
        return [merged.get(index) or Localization(entry.class_name) for index, entry in enumerate(self._entries)]

    async def _settle(self) -> None:
        """Make the keyframes final in order, as soon as their detections are in (next to the writing): each pair
        of consecutive keyframes whose detections disagree gets the frames between detected (:func:`needs_middle`).
        Runs until the last keyframe of the video is final."""
        while True:
            later = next((held for held in self._pending if held.key and held.frame.index > self._settled[0]), None)
            if later is None:  # every keyframe held is final
                if self._decoding_done:
                    break
                self._keyframe_added.clear()
                async with self._progressed:
                    self._idle = True
                    self._progressed.notify_all()
                await self._keyframe_added.wait()
                self._idle = False
                continue
            found = await self._found(later)
            self._refine(*self._settled, later.frame.index, found)
            async with self._progressed:
                self._settled = (later.frame.index, found)
                self._progressed.notify_all()
        async with self._progressed:
            self._all_settled = True
            self._progressed.notify_all()

    async def _settled_past(self, limit: int) -> None:
        """Wait until the keyframes up to the first after frame ``limit`` are final, or all those held (a long
        damaged stretch holds none)."""
        async with self._progressed:
            await self._progressed.wait_for(lambda: self._settled[0] >= limit or self._all_settled or self._idle)

    def _refine(
        self, first: int, first_found: list[Localization] | None, last: int, last_found: list[Localization] | None
    ) -> None:
        """Start detecting the frames between keyframes ``first`` and ``last`` when their detections disagree, all
        at once (halving would wait for one detection after the other); the writer awaits them, so the next
        intervals are decided while they run."""
        if last - first < 2 or first_found is None or last_found is None:
            return
        if not any(needs_middle(first_found[i].boxes, last_found[i].boxes) for i in self._tracked):
            return
        between = [
            held
            for held in self._pending
            if first < held.frame.index < last and not held.key and not held.frame.damaged
        ]
        for held in between:
            self._detect_tracked(held)

    async def _write_next(self) -> None:
        """Frame t, once the keyframes up to t + reach are final: its tracked boxes added, hidden, encoded, with
        the audio so far."""
        index = self._pending[0].frame.index
        await self._settled_past(index + self._reach)
        held = self._pending.popleft()
        found = await self._found(held)
        window = [*self._history]
        for later in self._pending:
            if later.frame.index > index + self._reach:
                break
            if later.key:
                window.append((later.frame.index, await self._found(later)))
        own = found if found is not None else self._nothing()
        if held.key:
            window.append((index, found))
        localizations, added = self._with_tracks(index, own, window)
        if held.key:
            self._history.append((index, found))
        while self._history and self._history[0][0] < index + 1 - 2 * self._reach:
            self._history.popleft()
        frame = held.frame
        if found is None:  # never written in the clear
            frame = dataclasses.replace(frame, pixels=np.zeros_like(frame.pixels))
        audio, self._audio = self._audio, []
        began = time.perf_counter()
        summaries = await _in_thread(self._hide_and_write, frame, localizations, audio)
        self.tally.write_s += time.perf_counter() - began
        detected = [] if held.frame.damaged else self._every + (self._tracked if held.key else [])
        self.tally.add(own, added, summaries, blackened=found is None)
        labels = [self._entries[i].class_name for i in detected]
        self.tally.detected(labels, keyframe=held.key, tracked=not held.key and found is not None)
        if self._progress is not None:
            elapsed = time.perf_counter() - self._started
            done = self.tally.frames
            self._progress(VideoProgress(done, self._reader.info.frames, done / elapsed if elapsed else 0.0, elapsed))

    def _with_tracks(
        self, index: int, own: list[Localization], window: Sequence[tuple[int, list[Localization] | None]]
    ) -> tuple[list[Localization], list[int]]:
        """Frame ``index``'s localizations with the tracked entries' track boxes added, and how many per entry."""
        localizations, added = list(own), [0] * len(own)
        for i in self._tracked:
            observed = [Observed(at, found[i].boxes) for at, found in window if found is not None]
            boxes, added[i] = boxes_at(index, observed, self._reach)
            localizations[i] = dataclasses.replace(own[i], boxes=boxes)
        return localizations, added

    def _nothing(self) -> list[Localization]:
        return [Localization(entry.class_name) for entry in self._entries]

    def _hide_and_write(
        self, frame: DecodedFrame, localizations: Sequence[Localization], audio: Sequence[Packet[Stream]]
    ) -> list[LabelSummary]:
        summaries, _, _ = hide_regions(frame.pixels, self._entries, localizations, self._output)
        self._writer.write(frame)
        self._writer.mux_audio(audio)
        return summaries


def _first_failure(failures: ExceptionGroup[Exception]) -> Exception:
    """A permanent error first (retrying the video cannot help), then any of ours, then whatever came first."""
    errors: list[Exception] = []
    pending: list[Exception] = [failures]
    while pending:
        error = pending.pop(0)
        if isinstance(error, ExceptionGroup):
            pending[:0] = error.exceptions
        else:
            errors.append(error)
    ours = [error for error in errors if isinstance(error, ProcessorError)]
    return next((error for error in ours if isinstance(error, PermanentError)), (ours or errors)[0])


async def _in_thread(call: Callable[..., T], *args: Any) -> T:
    """``call`` in a worker thread; when cancelled, wait for the thread to finish before raising, so that the
    caller never closes a container a thread still uses."""
    future = asyncio.ensure_future(asyncio.to_thread(call, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)

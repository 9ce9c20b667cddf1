"""What anonymizing a video did: progress while it runs, and the result over all its frames."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from processor.frames import Localization
from schemas.results import FrameResult, LabelSummary


@dataclass(frozen=True, slots=True)
class VideoProgress:
    """Reported after every frame written."""

    frames_done: int
    frames_total: int | None  # from the header; None when the container does not say
    fps: float  # frames written per second of processing so far
    elapsed_s: float


ProgressCallback = Callable[[VideoProgress], None]


class VideoResult(BaseModel):
    """The result record of one anonymized video (counts summed over its frames)."""

    model_config = ConfigDict(frozen=True)

    frames: int = Field(ge=0, description="frames read and written (the same number)")
    width: int = Field(description="as stored; a player turns it by `rotation`")
    height: int
    rotation: int = Field(description="degrees counterclockwise from the display matrix, kept in the output")
    frame_rate: float = Field(description="the source's nominal rate; timestamps are copied, so VFR survives")
    duration_s: float | None = Field(description="media duration from the source's header")
    container: str = Field(description="output container, e.g. mp4")
    audio: list[str] = Field(description="per audio stream: codec and whether copied or re-encoded")
    counts: dict[str, int] = Field(description="regions found per label, summed over frames")
    smoothed: dict[str, int] = Field(
        description="regions hidden in addition by tracking (between keyframes, over misses, at a track's ends), "
        "per label"
    )
    frames_with: dict[str, int] = Field(description="frames in which each label was found")
    labels: list[LabelSummary] = Field(description="per sensitive_info entry; count = regions hidden over all frames")
    timings_ms: dict[str, float] = Field(description="total wall time, and the summed localize / anonymize+encode")
    processing_fps: float
    frames_blackened: int = Field(
        default=0, ge=0, description="frames written solid black: corrupt, or a detector failed on them"
    )
    frames_dropped: int = Field(default=0, ge=0, description="video packets that gave no picture (corrupt)")
    keyframes: int = Field(default=0, ge=0, description="frames on which the tracked labels' detectors ran")
    frames_tracked: int = Field(
        default=0, ge=0, description="frames whose tracked labels were hidden from their tracks only (not detected)"
    )
    frames_detected: dict[str, int] = Field(
        default_factory=dict, description="frames on which each label's detector ran (untracked labels: every frame)"
    )
    configuration_hash: str

    def frame_result(self) -> FrameResult:
        """The shape a CompletionEvent carries (no per-frame regions: a video would have thousands)."""
        return FrameResult(
            width=self.width,
            height=self.height,
            format=self.container,
            counts=self.counts,
            labels=self.labels,
            regions=[],
            timings_ms=self.timings_ms,
            configuration_hash=self.configuration_hash,
        )


@dataclass
class Tally:
    """Running sums over the frames written so far."""

    frames: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    smoothed: Counter[str] = field(default_factory=Counter)
    frames_with: Counter[str] = field(default_factory=Counter)
    labels: list[LabelSummary] = field(default_factory=list)
    localize_s: float = 0.0
    write_s: float = 0.0
    blackened: int = 0
    keyframes: int = 0
    frames_tracked: int = 0
    frames_detected: Counter[str] = field(default_factory=Counter)

    def detected(self, labels: Sequence[str], *, keyframe: bool, tracked: bool) -> None:
        """One frame: the labels whose detectors ran on it, whether it was a keyframe or tracked only."""
        self.frames_detected.update(labels)
        self.keyframes += keyframe
        self.frames_tracked += tracked

    def add(
        self,
        found: Sequence[Localization],
        added: Sequence[int],
        summaries: Sequence[LabelSummary],
        *,
        blackened: bool = False,
    ) -> None:
        """One frame: what its detectors found, what tracking added, what was hidden per entry, and whether it
        was written black instead."""
        self.frames += 1
        self.blackened += blackened
        for localization, extra in zip(found, added, strict=True):
            self.counts[localization.label] += len(localization.boxes)
            self.smoothed[localization.label] += extra
            if localization.boxes or (localization.mask is not None and localization.mask.any()):
                self.frames_with[localization.label] += 1
        if not self.labels:
            self.labels = list(summaries)
            return
        self.labels = [
            total.model_copy(
                update={"count": total.count + one.count, "mask_pixels": total.mask_pixels + one.mask_pixels}
            )
            for total, one in zip(self.labels, summaries, strict=True)
        ]

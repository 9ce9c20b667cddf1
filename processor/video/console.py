"""``anonymizer video``: one video file, a progress bar (frames, fps, ETA) on stderr, and a summary line."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from processor.localizers import open_localizer
from processor.settings import Settings
from processor.video.pipeline import anonymize_video
from processor.video.result import VideoProgress, VideoResult
from schemas.config import UserConfiguration


async def anonymize_video_console(
    src: Path, dst: Path, configuration: UserConfiguration, settings: Settings, *, progress: bool = True
) -> VideoResult:
    """Anonymize ``src`` into ``dst`` with the built-in models and registered services; no duration limit."""
    bars: list[tqdm[None]] = []  # made at the first frame, so that a video refused at once shows no bar

    def report(state: VideoProgress) -> None:
        if not bars:
            bars.append(
                tqdm(total=state.frames_total, unit="frame", file=sys.stderr, dynamic_ncols=True, desc=src.name)
            )
        bars[0].update(state.frames_done - bars[0].n)

    try:
        async with open_localizer(settings) as localizer:
            return await anonymize_video(
                src,
                dst,
                configuration,
                localizer,
                video=settings.video,
                output=settings.output,
                limits=settings.limits,
                progress=report if progress else None,
            )
    finally:
        for bar in bars:
            bar.close()


def summary_line(result: VideoResult, dst: Path) -> str:
    """E.g. ``anonymized 300 frames (10.0 s) in 24.1 s (12.4 frames/s), hid 290 face (+6 by smoothing) …``."""
    found = ", ".join(
        f"{count} {label}" + (f" (+{result.smoothed[label]} by smoothing)" if result.smoothed.get(label) else "")
        for label, count in sorted(result.counts.items())
    )
    length = f" ({result.duration_s:.1f} s)" if result.duration_s is not None else ""
    audio = ", audio: " + "; ".join(result.audio) if result.audio else ", no audio"
    return (
        f"anonymized {result.frames} frames{length} in {result.timings_ms['total'] / 1000:.1f} s "
        f"({result.processing_fps:.1f} frames/s), hid {found or 'nothing'}{audio}; output {dst.resolve()}"
    )

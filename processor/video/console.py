"""``anonymizer video``: video files and folders, a progress bar per video (frames, fps, ETA) on stderr, a summary
line per video and one for the run."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from processor.batch import MediaKind
from processor.errors import ProcessorError
from processor.inference.base import Localizer
from processor.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from processor.settings import Settings
from processor.video.objects import output_suffix
from processor.video.pipeline import anonymize_video
from processor.video.result import VideoProgress, VideoResult
from schemas.config import UserConfiguration

VIDEOS = MediaKind(
    "video",
    VIDEO_SUFFIXES,
    {"an image: use anonymizer image": IMAGE_SUFFIXES},
    output_name=lambda relative: relative.with_suffix(output_suffix(relative.name)),
)
"""Videos in folders; outputs keep an .mp4, .m4v, .mov or .mkv container and are .mp4 otherwise."""


async def anonymize_videos(
    pairs: Sequence[tuple[Path, Path]],
    configuration: UserConfiguration,
    settings: Settings,
    localizer: Localizer,
    *,
    progress: bool = True,
) -> int:
    """Anonymize each (source, destination) in turn (a video already uses every core), with the built-in models
    and registered services and no duration limit; a failed video is reported and the next one goes on.
    Returns how many failed. A summary line per video on stderr."""
    failed = 0
    for src, dst in pairs:
        try:
            result = await _anonymize_one(src, dst, configuration, settings, localizer, progress=progress)
        except ProcessorError as error:
            failed += 1
            message = str(error)  # a batch names each failed video: most messages start with its name, not all
            where = "" if message.startswith(src.name) else f"{src}: "
            print(f"anonymizer: {error.kind}: {where}{message}", file=sys.stderr)  # noqa: T201
        else:
            print(summary_line(result, dst), file=sys.stderr)  # noqa: T201
    return failed


async def _anonymize_one(
    src: Path, dst: Path, configuration: UserConfiguration, settings: Settings, localizer: Localizer, *, progress: bool
) -> VideoResult:
    bars: list[tqdm[None]] = []  # made at the first frame, so that a video refused at once shows no bar

    def report(state: VideoProgress) -> None:
        if not bars:
            bars.append(
                tqdm(total=state.frames_total, unit="frame", file=sys.stderr, dynamic_ncols=True, desc=src.name)
            )
        bars[0].update(state.frames_done - bars[0].n)

    try:
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
    """E.g. ``anonymized 300 frames (10.0 s) in 24.1 s (12.4 frames/s), hid 290 face (+6 by tracking) …``."""
    found = ", ".join(
        f"{count} {label}" + (f" (+{result.smoothed[label]} by tracking)" if result.smoothed.get(label) else "")
        for label, count in sorted(result.counts.items())
    )
    length = f" ({result.duration_s:.1f} s)" if result.duration_s is not None else ""
    audio = ", audio: " + "; ".join(result.audio) if result.audio else ", no audio"
    return (
        f"anonymized {result.frames} frames{length} in {result.timings_ms['total'] / 1000:.1f} s "
        f"({result.processing_fps:.1f} frames/s), hid {found or 'nothing'}{audio}; output {dst.resolve()}"
    )

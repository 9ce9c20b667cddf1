"""Entry points for the HTTP API (a file in, a file out) and the stream worker (an object's bytes in, a file out).

Both apply ``video.max_duration_s``: a request or an event holds its connection or its partition's commit point
for as long as the video takes, so very long videos are refused (VideoTooLong, permanent) rather than processed
for hours; the CLI (``anonymizer video``) has no limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from processor.inference.base import Localizer
from processor.media import VIDEO_SUFFIXES
from processor.settings import Settings
from processor.video.pipeline import anonymize_video
from processor.video.result import ProgressCallback, VideoResult
from processor.video.writer import CONTAINERS
from schemas.config import UserConfiguration


@dataclass(frozen=True, slots=True)
class VideoOutput:
    """An anonymized video on local disk (valid inside :func:`anonymized_video`'s block) and its result."""

    path: Path
    content_type: str
    result: VideoResult


def is_video_name(name: str) -> bool:
    """True for an object name or URL whose suffix is a video container's (query strings are not expected)."""
    return PurePosixPath(name).suffix.lower() in VIDEO_SUFFIXES


def output_suffix(name: str) -> str:
    """The suffix of the anonymized video of ``name``: the same container for .mp4/.m4v/.mov/.mkv, else .mp4."""
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in CONTAINERS else ".mp4"


async def anonymize_video_file(
    src: Path,
    dst: Path,
    configuration: UserConfiguration,
    localizer: Localizer,
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> VideoResult:
    """The HTTP API's entry: ``src`` (an uploaded file) anonymized into ``dst`` (.mp4, .m4v, .mov or .mkv).

    Raises PermanentError (VideoUndecodable, VideoTooLong above ``video.max_duration_s``, ...: answer 4xx) or
    TransientError (an inference service unavailable: 503); ``dst`` is then not written.
    """
    return await anonymize_video(
        src,
        dst,
        configuration,
        localizer,
        video=settings.video,
        output=settings.output,
        limits=settings.limits,
        max_duration_s=settings.video.max_duration_s,
        progress=progress,
    )


@contextlib.asynccontextmanager
async def anonymized_video(
    data: bytes, name: str, configuration: UserConfiguration, localizer: Localizer, settings: Settings
) -> AsyncIterator[VideoOutput]:
    """The stream worker's entry: a video object's bytes (``name``: its key, for the container) anonymized into a
    temporary file, deleted when the block exits::

        async with anonymized_video(data, key, configuration, localizer, settings) as video:
            await storage.put(url, video.path.read_bytes(), content_type=video.content_type, ...)

    Raises as :func:`anonymize_video_file`.
    """
    suffix = output_suffix(name)
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="anonymizer-video-"))
    try:
        source = folder / f"source{PurePosixPath(name).suffix.lower()}"
        await asyncio.to_thread(source.write_bytes, data)
        target = folder / f"anonymized{suffix}"
        result = await anonymize_video_file(source, target, configuration, localizer, settings)
        await asyncio.to_thread(source.unlink)
        yield VideoOutput(target, CONTAINERS[suffix][1], result)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)

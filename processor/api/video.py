"""``POST /anonymize_video/``: a video upload in, the anonymized video (H.264) out, in the same response.

The original API saved the result on the server's disk; this one streams it back. The upload and the result
live in a folder of this request's own (``anonymizer-api-*`` in the system temp dir), removed when the answer
has been sent or the request failed: no file is shared between requests. The container is kept for .mp4,
.m4v, .mov and .mkv uploads, any other becomes .mp4. Videos longer than ``video.max_duration_s`` are refused.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import orjson
from aiohttp import web

from processor.api.forms import read_multipart
from processor.api.resources import LOCALIZER, SETTINGS
from processor.configuration import parse_configuration
from processor.video.objects import anonymize_video_file, output_suffix
from processor.video.result import VideoResult
from processor.video.writer import CONTAINERS

_CHUNK = 1 << 20


async def anonymize_video(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="anonymizer-api-"))
    try:
        form = await read_multipart(
            request, ("video", "configuration"), settings.http.max_video_upload_bytes, spool={"video": folder}
        )
        configuration = parse_configuration(form.fields["configuration"])
        suffix = output_suffix(form.filenames.get("video", "video.mp4"))
        target = folder / f"anonymized{suffix}"
        result = await anonymize_video_file(
            form.files["video"], target, configuration, request.app[LOCALIZER], settings
        )
        return await send_video(request, target, CONTAINERS[suffix][1], result)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)


async def send_video(request: web.Request, path: Path, content_type: str, result: VideoResult) -> web.StreamResponse:
    """Stream the anonymized video at ``path`` with what was done in headers (also the job API's result)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="anonymized{path.suffix}"',
            "X-Anonymizer-Counts": orjson.dumps(result.counts).decode(),
            "X-Anonymizer-Frames": str(result.frames),
            "X-Anonymizer-Frames-Blackened": str(result.frames_blackened),
            "X-Anonymizer-Frames-Dropped": str(result.frames_dropped),
            "X-Anonymizer-Keyframes": str(result.keyframes),
            "X-Anonymizer-Frames-Tracked": str(result.frames_tracked),
            "X-Anonymizer-Configuration-Hash": result.configuration_hash,
            "Server-Timing": f"total;dur={result.timings_ms.get('total', 0.0):.1f}",
        }
    )
    response.content_length = (await asyncio.to_thread(path.stat)).st_size
    await response.prepare(request)
    with await asyncio.to_thread(path.open, "rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            await response.write(chunk)
    await response.write_eof()
    return response

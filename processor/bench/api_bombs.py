"""API latency under image bombs: how long a camera photo waits on ``/anonymize`` while other clients post huge
images, beside the same photo on a quiet API, measured in one run.

The API (:func:`processor.api.app.create_app` with the given settings) listens on loopback in this process and
blackens the faces the built-in CenterFace finds. One camera client posts the bundled 512×512 astronaut photo in a
loop; in the bombed scenario ``bombers`` more clients each post a 48-megapixel JPEG in a loop at the same time. The
two-lane pixel budget (:mod:`processor.pixel_budget`) is what keeps the photo's wait short: frames of up to an eighth
of ``limits.max_pixels_in_flight`` never queue behind larger ones. Peak RSS is this process's high-water mark (API
and clients) during each scenario (Linux: ``VmHWM``, reset through ``/proc/self/clear_refs`` before it starts).

Run: ``anonymizer bench --only api-bombs [--bomb-seconds S]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
from aiohttp import web

from processor.api.app import create_app
from processor.bench.scenes import street_background
from processor.settings import Settings

BOMB_SIZE = (8000, 6000)  # (W, H): 48 MP, well under limits.max_pixels (100 MP), so the API accepts it
BOMBERS = 8
_FACES_BLACKENED = {
    "sensitive_info": [
        {
            "model_name": "centerface",
            "class_name": "face",
            "anonymization_technique": "blackening",
            "inference_type": "detection",
            "anonymization_degree": 1.0,
            "url": "builtin",
        }
    ]
}


@dataclass
class Tally:
    """What one scenario's clients saw."""

    camera_ms: list[float] = field(default_factory=list)
    camera_errors: int = 0
    bombs: int = 0
    bomb_errors: int = 0


def camera_photo() -> bytes:
    """The bundled astronaut photo (512×512 JPEG), as a camera client would post it."""
    return (resources.files("processor") / "samples" / "astronaut.jpg").read_bytes()


def bomb_jpeg(size: tuple[int, int] = BOMB_SIZE) -> bytes:
    """A face-free ``size`` (W, H) JPEG: what a client posting huge images sends (a small street background scaled
    up, so that making it costs little time and memory)."""
    width, height = size
    background = street_background((width // 4, height // 4), seed=1)
    pixels = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    encoded, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not encoded:
        raise RuntimeError("OpenCV could not encode the bomb image")
    return data.tobytes()


def summarize(scenario: str, bombers: int, seconds: float, tally: Tally, peak_rss_mib: float | None) -> dict[str, Any]:
    """One row of the part: the camera photo's latency figures (ms) and what the bombers got through."""
    latencies = tally.camera_ms
    return {
        "scenario": scenario,
        "bombers": bombers,
        "seconds": round(seconds, 1),
        "camera_requests": len(latencies),
        "camera_errors": tally.camera_errors,
        "median_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "max_ms": _percentile(latencies, 100),
        "bombs_done": tally.bombs,
        "bomb_errors": tally.bomb_errors,
        "peak_rss_mib": round(peak_rss_mib, 1) if peak_rss_mib is not None else None,
    }


async def measure(settings: Settings, *, seconds: float, bombers: int = BOMBERS) -> list[dict[str, Any]]:
    """The quiet row, then the bombed row, against one API instance on a free loopback port."""
    photo, bomb = camera_photo(), await asyncio.to_thread(bomb_jpeg)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/anonymize/"
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            await _post(session, url, photo)  # warm-up: a detector's first call is slower (ONNX Runtime allocates)
            return [
                await _scenario(session, url, photo, bomb, "quiet", 0, seconds),
                await _scenario(session, url, photo, bomb, "bombed", bombers, seconds),
            ]
    finally:
        await runner.cleanup()


def run_api_bombs_bench(settings: Settings, seconds: float = 15.0, bombers: int = BOMBERS) -> list[dict[str, Any]]:
    return asyncio.run(measure(settings, seconds=seconds, bombers=bombers))


async def _scenario(
    session: aiohttp.ClientSession, url: str, photo: bytes, bomb: bytes, name: str, bombers: int, seconds: float
) -> dict[str, Any]:
    tally = Tally()
    _reset_peak_rss()
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        _camera(session, url, photo, until, tally), *(_bomber(session, url, bomb, until, tally) for _ in range(bombers))
    )
    elapsed = time.monotonic() - started  # a bomb posted just before ``until`` is waited for
    return summarize(name, bombers, elapsed, tally, _peak_rss_mib())


async def _camera(session: aiohttp.ClientSession, url: str, photo: bytes, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        if await _post(session, url, photo):
            tally.camera_ms.append((time.perf_counter() - started) * 1000)
        else:
            tally.camera_errors += 1


async def _bomber(session: aiohttp.ClientSession, url: str, bomb: bytes, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        if await _post(session, url, bomb):
            tally.bombs += 1
        else:
            tally.bomb_errors += 1


async def _post(session: aiohttp.ClientSession, url: str, image: bytes) -> bool:
    """One ``/anonymize`` request as the original API's clients send it; True when answered 200 with an image."""
    form = aiohttp.FormData()
    form.add_field("image", io.BytesIO(image), filename="frame.jpg", content_type="application/octet-stream")
    form.add_field("configuration", json.dumps(_FACES_BLACKENED).encode(), filename="user_configuration.json")
    async with session.post(url, data=form) as response:
        body = await response.read()
        return response.status == 200 and len(body) > 0


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak then covers the whole process
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mib() -> float | None:
    """``VmHWM`` (Linux), in MiB; None where /proc is not there."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None

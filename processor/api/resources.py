"""What the API's handlers share, opened when the app starts and closed when it stops (aiohttp ``cleanup_ctx``).

One HTTP session and one localizer (built-in models plus the inference router and its URL registry) serve
every request; each request's data stays in that request (no temporary files, no shared buffers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from processor.inference.http import policy_session
from processor.inference.router import InferenceRouter
from processor.localizers import open_localizer
from processor.pixel_budget import PixelBudget
from processor.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
LOCALIZER = web.AppKey("localizer", InferenceRouter)
FRAME_SLOTS = web.AppKey("frame_slots", asyncio.Semaphore)
"""Bounds the images decoded at once (a 100 MP frame is 300 MB of pixels): requests beyond it wait their turn."""
PIXEL_BUDGET = web.AppKey("pixel_budget", PixelBudget)
"""Bounds the pixels of those images (``limits.max_pixels_in_flight``)."""


async def open_resources(app: web.Application) -> AsyncIterator[None]:
    """Session, then localizer; closed in reverse order. A broken URL registry file fails the start here."""
    settings = app[SETTINGS]
    async with policy_session(settings.inference) as session, open_localizer(settings, session) as localizer:
        app[LOCALIZER] = localizer
        app[FRAME_SLOTS] = asyncio.Semaphore(settings.http.max_frames_in_flight)
        app[PIXEL_BUDGET] = PixelBudget(settings.limits.max_pixels_in_flight)
        yield

"""What the API's handlers share, opened when the app starts and closed when it stops (aiohttp ``cleanup_ctx``).

One HTTP session and one localizer (built-in models plus the inference router and its URL registry) serve
every request; each request's data stays in that request (no temporary files, no shared buffers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from processor.inference.router import InferenceRouter
from processor.localizers import open_localizer
from processor.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
LOCALIZER = web.AppKey("localizer", InferenceRouter)


async def open_resources(app: web.Application) -> AsyncIterator[None]:
    """Session, then localizer; closed in reverse order. A broken URL registry file fails the start here."""
    async with aiohttp.ClientSession() as session, open_localizer(app[SETTINGS], session) as localizer:
        app[LOCALIZER] = localizer
        yield

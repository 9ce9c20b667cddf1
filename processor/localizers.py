"""The one place that builds the localizer every entry point uses: built-in models behind the inference router."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp

from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.inference.router import InferenceRouter, open_router
from processor.settings import Settings


@contextlib.asynccontextmanager
async def open_localizer(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncIterator[InferenceRouter]:
    """Built-in detectors (url ``builtin``) plus the registered inference URLs, closed in reverse order on exit;
    ``.registry`` is the URL registry (for the API's URL endpoints).

    :param session: a shared HTTP session (left open); without one the router's client owns its own.
    """
    async with (
        BuiltinLocalizer(settings.builtin) as builtin,
        open_router(
            settings.inference,
            session=session,
            builtin=builtin,
            builtin_models=tuple(builtin.models.catalog().values()),
        ) as router,
    ):
        yield router

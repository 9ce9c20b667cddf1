"""The localizer the pipeline uses: sends each ``sensitive_info`` entry to the service that serves it.

Which service: see :mod:`processor.inference.capabilities` (explicit URLs must be registered; otherwise the first
registered URL serving the model and label). ``builtin`` goes to the in-process detectors, the rest over HTTP.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import aiohttp

from processor import metrics
from processor.errors import ProcessorError, UnknownModel
from processor.frames import BoolMask, Box, Frame, Localization
from processor.inference.base import Localizer
from processor.inference.builtin.catalog import BUILTIN_URL, CATALOG, ModelInfo
from processor.inference.capabilities import Route
from processor.inference.http import InferenceClient
from processor.inference.registry import UrlRegistry
from processor.settings import InferenceSettings
from schemas.config import InferenceType, SensitiveInfo


class InferenceRouter:
    """Implements :class:`~processor.inference.base.Localizer` over the registry's services.

    :param registry: registered URLs and their capabilities (kept fresh by the registry itself).
    :param client: the HTTP client for every non-built-in URL.
    :param builtin: the in-process detectors, for ``builtin``; ``None`` when this process has none.
    """

    def __init__(self, registry: UrlRegistry, client: InferenceClient, builtin: Localizer | None = None) -> None:
        self._registry = registry
        self._client = client
        self._builtin = builtin

    @property
    def registry(self) -> UrlRegistry:
        """The URL registry (add, remove, capabilities), for the API's URL endpoints."""
        return self._registry

    def route(self, entry: SensitiveInfo) -> Route:
        """Where ``entry`` goes; raises the permanent or transient errors of :meth:`Capabilities.route`."""
        return self._registry.capabilities.route(entry)

    def is_healthy(self, url: str) -> bool:
        """False while the HTTP service at ``url`` is marked unhealthy (failures in a row; until a probe answers)."""
        return self._client.is_healthy(url)

    def needs_encoded_frames(self, entries: Sequence[SensitiveInfo]) -> bool:
        """True when an entry is routed to an HTTP service (which uploads the frame's bytes)."""
        return any(self.route(entry).url != BUILTIN_URL for entry in entries)

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        """Records the latency (or the error kind) per URL in :mod:`processor.metrics`; routing errors (unknown
        label, unregistered URL) are configuration problems, not counted, so a URL label is always a registered one."""
        route = self.route(entry)
        started = time.perf_counter()
        try:
            found = await self._localize(frame, entry, route)
        except ProcessorError as error:
            metrics.record_inference_error(route.url, error.kind)
            raise
        metrics.observe_inference(route.url, time.perf_counter() - started)
        return found

    async def _localize(self, frame: Frame, entry: SensitiveInfo, route: Route) -> Localization:
        if route.url == BUILTIN_URL:
            if self._builtin is None:
                raise UnknownModel(
                    f"sensitive_info entry (label {entry.class_name!r}, model {entry.model_name!r}): "
                    "built-in models are not available in this process"
                )
            return await self._builtin.localize(frame, entry)
        started = time.perf_counter()
        boxes: tuple[Box, ...] = ()
        mask: BoolMask | None = None
        if entry.inference_type is InferenceType.detection:
            boxes = await self._client.detect(route.url, entry.model_name, frame, entry.class_name)
        else:
            class_index = route.model.labels.index(entry.class_name)
            mask = await self._client.segment(route.url, entry.model_name, frame, class_index)
        return Localization(
            label=entry.class_name,
            boxes=boxes,
            mask=mask,
            source=f"{route.url} {entry.model_name}",
            timings_ms={"inference": (time.perf_counter() - started) * 1000.0},
        )


@contextlib.asynccontextmanager
async def open_router(
    settings: InferenceSettings,
    *,
    session: aiohttp.ClientSession | None = None,
    builtin: Localizer | None = None,
    builtin_models: Sequence[ModelInfo] = tuple(CATALOG.values()),
) -> AsyncIterator[InferenceRouter]:
    """Client, registry (refreshing in the background) and router, closed in reverse order on exit.

    :param session: a shared session (left open); without one the client owns a new one.
    :param builtin: the in-process detectors, already entered by the caller, or ``None``.
    :param builtin_models: the models ``builtin`` serves (the bundled ones plus the custom ones).
    """
    async with (
        InferenceClient(settings, session) as client,
        UrlRegistry(settings, client, builtin_models=builtin_models) as registry,
    ):
        yield InferenceRouter(registry, client, builtin)

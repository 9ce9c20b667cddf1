"""The inference router with per-URL latency and error metrics (:mod:`processor.metrics`), for every entry point.

Measured per ``sensitive_info`` entry, as the pipeline sees it: one localization, retries included, labelled by
the URL it was routed to (``builtin`` for the in-process models). Routing failures (unknown label, unregistered
URL) are configuration problems, not inference errors: they are not counted here, so a URL label is always a
registered URL, never one a user made up.
"""

from __future__ import annotations

import time

from processor import metrics
from processor.errors import ProcessorError
from processor.inference.base import Frame, Localization
from processor.inference.capabilities import Route
from processor.inference.registry import UrlRegistry
from processor.inference.router import InferenceRouter
from schemas.config import SensitiveInfo


class InstrumentedLocalizer:
    """A :class:`~processor.inference.base.Localizer` over ``router`` that records what each localization cost."""

    def __init__(self, router: InferenceRouter) -> None:
        self._router = router

    @property
    def registry(self) -> UrlRegistry:
        return self._router.registry

    def route(self, entry: SensitiveInfo) -> Route:
        return self._router.route(entry)

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        url = self._router.route(entry).url  # raises routing errors before anything is measured
        started = time.perf_counter()
        try:
            found = await self._router.localize(frame, entry)
        except ProcessorError as error:
            metrics.record_inference_error(url, error.kind)
            raise
        metrics.observe_inference(url, time.perf_counter() - started)
        return found

"""A budget of decoded pixels held at once by the frames of one process (API requests and stream events alike).

The count bounds (``http.max_frames_in_flight``, ``stream.max_in_flight``) alone let eight frames at the pixel
limit (100 MP, 300 MB of BGR each) be decoded together. A frame takes its pixel count, read from its header,
before it is decoded and gives it back when its output is encoded; one larger than the whole budget waits until
it is alone. Waiters are served first come, first served, so a large frame is not starved by small ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from processor import metrics


class PixelBudget:
    """At most ``capacity`` pixels held at once (``None``: no limit)."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.held = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        """Hold ``pixels`` (at most the whole budget) for the ``async with`` block, waiting for them first."""
        weight = pixels if self.capacity is None else min(pixels, self.capacity)
        await self._take(weight)
        try:
            yield
        finally:
            self._give_back(weight)

    async def _take(self, weight: int) -> None:
        if not self._waiters and self._fits(weight):
            self._add(weight)
            return
        metrics.PIXEL_BUDGET_WAITS.inc()
        waiter = asyncio.get_running_loop().create_future()
        entry = (weight, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                with contextlib.suppress(ValueError):  # already passed over by _wake
                    self._waiters.remove(entry)
                self._wake()  # it may have been the head that held the others back
            else:  # granted just before the cancellation arrived
                self._give_back(weight)
            raise

    def _give_back(self, weight: int) -> None:
        self._add(-weight)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            weight, waiter = self._waiters.popleft()
            if waiter.cancelled():
                continue
            self._add(weight)
            waiter.set_result(None)

    def _fits(self, weight: int) -> bool:
        return self.capacity is None or self.held + weight <= self.capacity

    def _add(self, weight: int) -> None:
        self.held += weight
        metrics.PIXELS_HELD.inc(weight)

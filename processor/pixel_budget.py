"""A budget of decoded pixels held at once by the frames of one process (API requests and stream events alike).

The count bounds (``http.max_frames_in_flight``, ``stream.max_in_flight``) alone let eight frames at the pixel
limit (100 MP, 300 MB of BGR each) be decoded together. A frame takes its pixel count, read from its header,
before it is decoded and gives it back when its output is encoded.

Two lanes, so that large frames cannot starve small ones and small ones cannot starve large ones:

- a **small** frame (at most an eighth of the budget: 25 MP by default, i.e. every camera frame and phone photo)
  never waits behind a large one: it only needs room in the whole budget, and while a large frame waits, small
  frames together hold at most their eighth, so the large frame's turn comes; waiting small frames are served
  smallest first, so a 1080p frame does not wait behind 16 MP ones either;
- **large** frames share the other seven eighths, first come first served; one larger than that waits until no
  other large frame is held (it may then hold its own pixels beside the small lane's).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from processor import metrics

SMALL_LANE_SHARE = 8
"""The small lane is ``capacity // SMALL_LANE_SHARE`` pixels; a frame of at most that many is small."""

_Waiter = tuple[int, int, int, asyncio.Future[None]]
"""(priority, arrival, weight, future) in a heap: small frames by weight then arrival, large ones by arrival."""


class PixelBudget:
    """At most ``capacity`` pixels held at once (``None``: no limit), in a small and a large lane."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.small_lane = None if capacity is None else capacity // SMALL_LANE_SHARE
        self.large_lane = None if capacity is None else capacity - capacity // SMALL_LANE_SHARE
        self.held = 0
        self.held_small = 0
        self._small: list[_Waiter] = []
        self._large: list[_Waiter] = []
        self._arrivals = itertools.count()

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        """Hold ``pixels`` for the ``async with`` block, waiting for them first."""
        small = self.is_small(pixels)
        weight = pixels if small or self.large_lane is None else min(pixels, self.large_lane)
        await self._take(weight, small)
        try:
            yield
        finally:
            self._give_back(weight, small)

    def is_small(self, pixels: int) -> bool:
        return self.small_lane is None or pixels <= self.small_lane

    async def _take(self, weight: int, small: bool) -> None:
        queue = self._small if small else self._large
        waiter = asyncio.get_running_loop().create_future()
        entry = (weight if small else 0, next(self._arrivals), weight, waiter)
        heapq.heappush(queue, entry)
        self._wake()  # granted at once when it is its lane's next and fits
        if waiter.done():
            return
        metrics.PIXEL_BUDGET_WAITS.inc()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                if entry in queue:  # else already passed over by _wake
                    queue.remove(entry)
                    heapq.heapify(queue)
                self._wake()  # it may have been the head that held the others back
            else:  # granted just before the cancellation arrived
                self._give_back(weight, small)
            raise

    def _give_back(self, weight: int, small: bool) -> None:
        self._add(-weight, small)
        self._wake()

    def _wake(self) -> None:
        """Grant the heads of both queues while they fit (large first: it has waited for the small lane to drain)."""
        granted = True
        while granted:
            granted = False
            for queue, small in ((self._large, False), (self._small, True)):
                while queue and queue[0][3].cancelled():
                    heapq.heappop(queue)
                if queue and self._fits(queue[0][2], small):
                    _, _, weight, waiter = heapq.heappop(queue)
                    self._add(weight, small)
                    waiter.set_result(None)
                    granted = True

    def _fits(self, weight: int, small: bool) -> bool:
        if self.capacity is None or self.small_lane is None or self.large_lane is None:
            return True
        if self.held + weight > self.capacity:
            return False
        if small:
            return not self._large or self.held_small + weight <= self.small_lane
        return self.held - self.held_small + weight <= self.large_lane

    def _add(self, weight: int, small: bool) -> None:
        self.held += weight
        if small:
            self.held_small += weight
        metrics.PIXELS_HELD.inc(weight)

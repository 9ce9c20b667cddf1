"""How the long-running commands (``run``, ``serve``, ``infer``) run: uvloop, and frame buffers kept for reuse.

Both are measured with the stream benchmark (``python -m processor.bench.stream``, zero-latency stub, 1080p):

- **uvloop** runs the event loop, the sockets and the timers in C; the processor's event-loop thread spends
  about 0.3–0.5 ms less per event than on asyncio's pure-Python loop.
- **glibc's allocator thresholds.** A 1080p frame is 6 MB of pixels plus its JPEG; by default glibc maps a
  block that large for each allocation and unmaps it on free, or trims the heap it came from, so with 32 frames
  in flight every frame's buffers were faulted in again (fresh, zeroed pages: ~2 ms of system CPU per frame).
  Raising the mmap and trim thresholds makes freed frame buffers reusable; the memory held stays what the peak
  of frames in flight needed (``stream.max_in_flight`` bounds it).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")
log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024
"""Blocks up to this size come from the heap and are reused (glibc's largest value: a 4K frame is 24.9 MB)."""
TRIM_THRESHOLD = 512 * 1024 * 1024
"""Free memory at the heap's top kept for reuse up to this much, rather than handed back to the kernel."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop, after :func:`keep_frame_buffers`."""
    keep_frame_buffers()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def keep_frame_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds (see the module docstring); False where the C library is not glibc
    (musl, macOS), which have no such thresholds to tune."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not tuned:
        log.debug("the C library refused the allocator thresholds; frame buffers are mapped per frame")
    return tuned

"""The long-running commands' runtime: uvloop, and glibc's allocator thresholds raised."""

from __future__ import annotations

import asyncio
import platform

import pytest
import uvloop

from processor import runtime


def test_run_returns_the_result_on_a_uvloop_loop() -> None:
    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert issubclass(runtime.run(loop_type()), uvloop.Loop)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_glibc_accepts_the_allocator_thresholds() -> None:
    assert runtime.keep_frame_buffers() is True

"""The decoded-pixel budget: never more than its capacity held, first come first served, an oversize frame alone,
a cancelled waiter never leaks pixels or blocks the queue."""

from __future__ import annotations

import asyncio

import pytest

from processor.pixel_budget import PixelBudget


async def holder(budget: PixelBudget, pixels: int, log: list[str], name: str, release: asyncio.Event) -> None:
    async with budget.hold(pixels):
        log.append(name)
        assert budget.capacity is None or budget.held <= budget.capacity
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_beyond_the_capacity_wait_and_are_served_first_come_first_served() -> None:
    budget, log, gates = PixelBudget(100), list[str](), {name: asyncio.Event() for name in "abcd"}
    tasks = {name: asyncio.create_task(holder(budget, pixels, log, name, gates[name])) for name, pixels in
             (("a", 60), ("b", 50), ("c", 10), ("d", 40))}  # fmt: skip
    await settle()
    assert log == ["a"] and budget.held == 60, "b does not fit; c would, but waits behind b (no starvation)"
    gates["a"].set()
    await settle()
    assert log == ["a", "b", "c", "d"] and budget.held == 100
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks.values())
    assert budget.held == 0


async def test_a_frame_larger_than_the_whole_budget_runs_alone() -> None:
    budget, log, gates = PixelBudget(100), list[str](), {name: asyncio.Event() for name in "ab"}
    small = asyncio.create_task(holder(budget, 30, log, "a", gates["a"]))
    await settle()
    huge = asyncio.create_task(holder(budget, 10_000, log, "b", gates["b"]))
    await settle()
    assert log == ["a"]
    gates["a"].set()
    await settle()
    assert log == ["a", "b"] and budget.held == 100
    gates["b"].set()
    await asyncio.gather(small, huge)
    assert budget.held == 0


async def test_a_cancelled_waiter_gives_its_turn_to_the_next_and_holds_nothing() -> None:
    budget, log, gates = PixelBudget(100), list[str](), {name: asyncio.Event() for name in "abc"}
    first = asyncio.create_task(holder(budget, 70, log, "a", gates["a"]))
    await settle()
    blocked = asyncio.create_task(holder(budget, 80, log, "b", gates["b"]))
    behind = asyncio.create_task(holder(budget, 20, log, "c", gates["c"]))
    await settle()
    assert log == ["a"]
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    await settle()
    assert log == ["a", "c"] and budget.held == 90
    gates["a"].set()
    gates["c"].set()
    await asyncio.gather(first, behind)
    assert budget.held == 0


async def test_a_waiter_cancelled_right_after_its_turn_came_gives_the_pixels_back() -> None:
    budget, log = PixelBudget(100), list[str]()
    first = budget.hold(100)
    await first.__aenter__()
    second = asyncio.create_task(holder(budget, 50, log, "b", asyncio.Event()))
    await settle()
    await first.__aexit__(None, None, None)  # grants b's turn without letting b run ...
    second.cancel()  # ... and b is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await second
    assert log == [] and budget.held == 0


async def test_no_limit_never_waits() -> None:
    budget, log, gate = PixelBudget(None), list[str](), asyncio.Event()
    tasks = [asyncio.create_task(holder(budget, 10**9, log, str(n), gate)) for n in range(3)]
    await settle()
    assert len(log) == 3 and budget.held == 3 * 10**9
    gate.set()
    await asyncio.gather(*tasks)
    assert budget.held == 0

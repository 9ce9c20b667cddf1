"""The decoded-pixel budget: never more than its capacity held, large frames first come first served, small frames
never behind large ones and never starving them, an oversize frame alone in its lane, a cancelled waiter never
leaks pixels or blocks the queue."""

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


async def test_large_frames_beyond_their_lane_wait_and_are_served_first_come_first_served() -> None:
    budget, log, gates = PixelBudget(800), list[str](), {name: asyncio.Event() for name in "abcd"}
    assert (budget.small_lane, budget.is_small(100), budget.is_small(101)) == (100, True, False)
    tasks = {name: asyncio.create_task(holder(budget, pixels, log, name, gates[name])) for name, pixels in
             (("a", 400), ("b", 350), ("c", 200), ("d", 100))}  # fmt: skip
    await settle()
    assert log == ["a", "d"] and budget.held == 500, "b does not fit the large lane; c would, but waits behind b"
    gates["a"].set()
    await settle()
    assert log == ["a", "d", "b", "c"] and budget.held == 650
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks.values())
    assert budget.held == 0 and budget.held_small == 0


async def test_a_small_frame_never_waits_behind_a_large_one() -> None:
    budget, log, gates = PixelBudget(800), list[str](), {name: asyncio.Event() for name in "abc"}
    tasks = [asyncio.create_task(holder(budget, pixels, log, name, gates[name])) for name, pixels in
             (("a", 700), ("b", 500), ("c", 60))]  # fmt: skip
    await settle()
    assert log == ["a", "c"] and budget.held == 760, "b waits for a; the small c does not wait for b"
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert budget.held == 0


async def test_waiting_small_frames_are_served_smallest_first() -> None:
    budget, log, gates = PixelBudget(800), list[str](), {name: asyncio.Event() for name in "abcde"}
    tasks = [asyncio.create_task(holder(budget, pixels, log, name, gates[name])) for name, pixels in
             (("a", 700), ("b", 70), ("c", 90), ("d", 50), ("e", 30))]  # fmt: skip
    await settle()
    assert log == ["a", "b", "e"] and budget.held == 800, "c and d do not fit; e, smaller, passes them"
    gates["b"].set()
    await settle()
    assert log == ["a", "b", "e", "d"], "d (50) before c (90), though c came first"
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert budget.held == 0 and budget.held_small == 0


async def test_small_frames_cannot_starve_a_large_one() -> None:
    budget, log, gates = PixelBudget(800), list[str](), {name: asyncio.Event() for name in "abcd"}
    tasks = [asyncio.create_task(holder(budget, 100, log, name, gates[name])) for name in "ab"]
    await settle()
    assert budget.held_small == 200, "no large frame waits: small frames may use more than their lane"
    tasks.append(asyncio.create_task(holder(budget, 700, log, "c", gates["c"])))
    await settle()
    tasks.append(asyncio.create_task(holder(budget, 50, log, "d", gates["d"])))
    await settle()
    assert log == ["a", "b"], "c waits for room; d waits too, since small frames already hold more than their lane"
    gates["a"].set()
    await settle()
    assert log == ["a", "b", "c"] and budget.held == 800, "c's turn came before any more small frames"
    gates["b"].set()
    await settle()
    assert log == ["a", "b", "c", "d"]
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert budget.held == 0


async def test_a_frame_larger_than_the_large_lane_waits_until_it_is_the_only_large_one() -> None:
    budget, log, gates = PixelBudget(800), list[str](), {name: asyncio.Event() for name in "abc"}
    first = asyncio.create_task(holder(budget, 300, log, "a", gates["a"]))
    await settle()
    huge = asyncio.create_task(holder(budget, 10_000, log, "b", gates["b"]))
    await settle()
    small = asyncio.create_task(holder(budget, 100, log, "c", gates["c"]))
    await settle()
    assert log == ["a", "c"]
    gates["a"].set()
    await settle()
    assert log == ["a", "c", "b"] and budget.held == 800, "the huge frame counts as the whole large lane"
    gates["b"].set()
    gates["c"].set()
    await asyncio.gather(first, huge, small)
    assert budget.held == 0


async def test_a_cancelled_waiter_gives_its_turn_to_the_next_and_holds_nothing() -> None:
    budget, log, gates = PixelBudget(800), list[str](), {name: asyncio.Event() for name in "abc"}
    first = asyncio.create_task(holder(budget, 560, log, "a", gates["a"]))
    await settle()
    blocked = asyncio.create_task(holder(budget, 640, log, "b", gates["b"]))
    behind = asyncio.create_task(holder(budget, 120, log, "c", gates["c"]))
    await settle()
    assert log == ["a"]
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    await settle()
    assert log == ["a", "c"] and budget.held == 680
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

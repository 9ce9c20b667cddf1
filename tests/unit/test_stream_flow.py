"""Backpressure policy: pause at the bound, resume below the low watermark, no flapping in between."""

from __future__ import annotations

import pytest

from processor.stream.flow import FlowControl, Transition


def test_pauses_at_the_bound_and_resumes_below_the_watermark() -> None:
    flow = FlowControl(max_in_flight=8, resume_below=3)
    assert [flow.update(n) for n in range(8)] == [None] * 8
    assert flow.update(8) is Transition.PAUSE
    assert flow.paused
    assert [flow.update(n) for n in (9, 8, 7, 5, 3)] == [None] * 5  # between the marks: stays paused
    assert flow.update(2) is Transition.RESUME
    assert not flow.paused
    assert flow.update(7) is None


def test_default_watermark_is_half_the_bound() -> None:
    assert FlowControl(32).resume_below == 16
    assert FlowControl(1).resume_below == 1


def test_room_is_what_keeps_the_bound() -> None:
    flow = FlowControl(max_in_flight=10)
    assert flow.room(0) == 10
    assert flow.room(7) == 3
    flow.update(10)
    assert flow.room(4) == 0  # paused until below the watermark


@pytest.mark.parametrize(("bound", "low"), [(0, None), (4, 0), (4, 5)])
def test_rejects_impossible_bounds(bound: int, low: int | None) -> None:
    with pytest.raises(ValueError):
        FlowControl(bound, low)

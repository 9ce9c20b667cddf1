"""The offset tracker: contiguous commit points, multi-event messages, revoked partitions."""

from __future__ import annotations

import random

import pytest

from processor.stream.offsets import OffsetTracker

P0 = ("frames", 0)
P1 = ("frames", 1)


def test_nothing_tracked_has_no_commit_point() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    assert tracker.commit_point(P0) is None
    assert tracker.commit_points() == {}


def test_commit_point_stops_at_the_first_pending_offset() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    tickets = [tracker.track(P0, offset) for offset in range(10, 15)]
    assert tracker.commit_point(P0) == 10
    tracker.done(tickets[1])
    tracker.done(tickets[2])
    assert tracker.commit_point(P0) == 10  # 10 still in flight
    tracker.done(tickets[0])
    assert tracker.commit_point(P0) == 13  # 10, 11, 12 done: next to read is 13
    tracker.done(tickets[4])
    assert tracker.commit_point(P0) == 13
    tracker.done(tickets[3])
    assert tracker.commit_point(P0) == 15


def test_an_offset_with_several_events_is_done_only_when_all_are() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    ticket = tracker.track(P0, 0, events=3)
    tracker.done(ticket)
    tracker.done(ticket)
    assert tracker.commit_point(P0) == 0
    assert tracker.pending() == 1
    tracker.done(ticket)
    assert tracker.commit_point(P0) == 1
    assert tracker.pending() == 0
    with pytest.raises(ValueError, match="already done"):
        tracker.done(ticket)


def test_a_message_without_events_is_done_at_once() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    tracker.track(P0, 0, events=0)
    assert tracker.commit_point(P0) == 1
    assert tracker.commit_points() == {P0: 1}


def test_commit_points_hands_out_only_points_that_moved() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    first = tracker.track(P0, 5)
    tracker.track(P1, 0)
    assert tracker.commit_points() == {}  # nothing done yet: the start position is no progress
    tracker.done(first)
    assert tracker.commit_points() == {P0: 6}
    assert tracker.commit_points() == {}
    tracker.uncommitted({P0: 6})  # the commit failed
    assert tracker.commit_points() == {P0: 6}


def test_commit_points_can_be_limited_to_some_partitions() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    tracker.done(tracker.track(P0, 0))
    tracker.done(tracker.track(P1, 0))
    assert tracker.commit_points([P1, ("other", 3)]) == {P1: 1}
    assert tracker.commit_points() == {P0: 1}


def test_a_revoked_partition_ignores_its_late_tickets() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    late = tracker.track(P0, 0)
    tracker.forget([P0])
    assert tracker.commit_point(P0) is None
    # Assigned back and consumed again from the committed offset: the old task's ticket must not count.
    again = tracker.track(P0, 0)
    assert tracker.done(late) is False
    assert tracker.commit_point(P0) == 0
    assert tracker.pending() == 1
    assert tracker.done(again) is True
    assert tracker.commit_point(P0) == 1


def test_a_rewound_consumer_starts_the_partition_over() -> None:
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    stale = tracker.track(P0, 7)
    tracker.done(tracker.track(P0, 8))
    again = tracker.track(P0, 3)  # an offset reset moved the consumer back
    assert tracker.commit_point(P0) == 3
    assert tracker.done(stale) is False
    assert tracker.pending() == 1
    tracker.done(again)
    assert tracker.commit_points() == {P0: 4}


def test_random_completion_order_never_commits_past_a_pending_offset() -> None:
    rng = random.Random(7)
    tracker: OffsetTracker[tuple[str, int]] = OffsetTracker()
    totals = {offset: rng.randint(0, 3) for offset in range(200)}
    work = [tracker.track(P0, offset, count) for offset, count in totals.items()]
    events = [ticket for ticket in work for _ in range(totals[ticket.offset])]
    rng.shuffle(events)
    finished: dict[int, int] = dict.fromkeys(totals, 0)
    for ticket in events:
        tracker.done(ticket)
        finished[ticket.offset] += 1
        point = tracker.commit_point(P0)
        assert point is not None
        assert all(finished[offset] == totals[offset] for offset in range(point))
        if point < 200:
            assert finished[point] < totals[point]
    assert tracker.commit_point(P0) == 200
    assert tracker.pending() == 0

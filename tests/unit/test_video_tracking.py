"""Tracks of boxes: which boxes frame t hides, given the detections of the frames around it (exact boxes)."""

from __future__ import annotations

import pytest

from processor.frames import Box
from processor.video.tracking import GROWTH, VELOCITY_SLACK, Observed, boxes_at, build_tracks, iou

SIZE = 40.0


def face(left: float, top: float = 10.0, size: float = SIZE, confidence: float = 0.9) -> Box:
    return Box(left, top, left + size, top + size, "face", confidence)


def grown(box: Box, dx: float, dy: float | None = None) -> Box:
    dy = dx if dy is None else dy
    return Box(box.left - dx, box.top - dy, box.right + dx, box.bottom + dy, box.label, box.confidence)


def same(first: tuple[Box, ...], second: tuple[Box, ...]) -> bool:
    return len(first) == len(second) and all(
        (a.label, a.confidence) == (b.label, b.confidence)
        and [a.left, a.top, a.right, a.bottom] == pytest.approx([b.left, b.top, b.right, b.bottom])
        for a, b in zip(first, second, strict=True)
    )


def moving(frames: range, step: float = 10.0, start: float = 100.0) -> list[Observed]:
    """One face moving ``step`` px per frame to the right, detected in ``frames``."""
    return [Observed(index, (face(start + step * index),)) for index in frames]


def test_frames_between_keyframes_get_the_interpolated_box_grown_by_the_distance() -> None:
    keyframes = [Observed(0, (face(100),)), Observed(4, (face(120),))]  # 5 px per frame

    for index, distance in ((1, 1), (2, 2), (3, 1)):
        boxes, added = boxes_at(index, keyframes, reach=3)
        assert same(boxes, (grown(face(100 + 5 * index), distance * GROWTH * SIZE),))
        assert added == 1
    assert boxes_at(4, keyframes, reach=3) == ((face(120),), 0)  # a keyframe: its own detection


def test_small_boxes_a_few_pixels_apart_are_one_track() -> None:
    keyframes = [Observed(0, (face(100, size=16),)), Observed(5, (face(130, size=16),))]  # no overlap, 30 px

    boxes, added = boxes_at(2, keyframes, reach=4)

    assert same(boxes, (grown(face(112, size=16), 2 * GROWTH * 16),)) and added == 1


def test_boxes_too_far_apart_to_be_one_track_are_each_extended() -> None:
    keyframes = [Observed(0, (face(100),)), Observed(4, (face(140),))]  # no overlap: two tracks

    boxes, added = boxes_at(2, keyframes, reach=3)

    margin = 2 * GROWTH * SIZE
    assert same(boxes, (grown(face(100), margin), grown(face(140), margin)))
    assert added == 2


def test_a_one_frame_miss_is_filled_with_the_interpolated_box() -> None:
    observed = moving(range(0, 6))
    del observed[2]

    boxes, added = boxes_at(2, observed, reach=2)

    assert same(boxes, (grown(face(120), GROWTH * SIZE),))
    assert added == 1


def test_a_box_found_in_every_frame_is_kept_once() -> None:
    observed = [Observed(index, (face(100),)) for index in range(-2, 3)]
    assert boxes_at(0, observed, reach=2) == ((face(100),), 0)


def test_an_object_the_frame_found_itself_gets_no_track_box() -> None:
    jittering = [Observed(-2, (face(110),)), Observed(-1, (face(120),)), Observed(0, (face(100),))]
    jittering += [Observed(1, (face(110),)), Observed(2, (face(120),))]
    assert boxes_at(0, jittering, reach=2) == ((face(100),), 0)


def test_a_track_ending_is_extended_at_its_velocity_then_dropped() -> None:
    observed = moving(range(0, 4))  # last seen at 130 in frame 3, 10 px per frame
    dx, dy = GROWTH * SIZE + VELOCITY_SLACK * 10, GROWTH * SIZE  # it moves sideways: wider, not taller

    after_one, added = boxes_at(4, observed, reach=2)
    after_two, _ = boxes_at(5, observed, reach=2)

    assert same(after_one, (grown(face(140), dx, dy),)) and added == 1
    assert same(after_two, (grown(face(150), 2 * dx, 2 * dy),))
    assert boxes_at(6, observed, reach=2) == ((), 0)


def test_a_track_is_hidden_before_its_first_detection_too() -> None:
    observed = moving(range(3, 6))  # first seen at 130 in frame 3
    dx, dy = GROWTH * SIZE + VELOCITY_SLACK * 10, GROWTH * SIZE

    boxes, _ = boxes_at(1, observed, reach=3)  # frames 3 and 4 in the window: moved back at their velocity
    assert same(boxes, (grown(face(110), 2 * dx, 2 * dy),))
    boxes, _ = boxes_at(1, observed, reach=2)  # only frame 3 in the window: where it was first seen
    assert same(boxes, (grown(face(130), 2 * GROWTH * SIZE),))
    assert boxes_at(0, observed, reach=2) == ((), 0)


def test_crossing_objects_keep_their_tracks() -> None:
    rightwards = [face(20 * index) for index in range(11)]
    leftwards = [face(200 - 20 * index) for index in range(11)]
    observed = [Observed(index, (rightwards[index], leftwards[index])) for index in range(11)]

    tracks = build_tracks(observed)

    assert [[box for _, box in track.seen] for track in tracks] == [rightwards, leftwards]


def test_a_face_missed_where_two_cross_is_still_hidden() -> None:
    observed = [Observed(index, (face(20 * index), face(200 - 20 * index))) for index in range(11)]
    observed[5] = Observed(5, (face(100),))  # they coincide at 100: one box found

    boxes, added = boxes_at(5, observed, reach=2)

    assert boxes == (face(100),) and added == 0  # the other track's box is the same object's place
    assert all(iou(box, face(100)) >= 0.3 for box in boxes)


def test_a_second_face_missed_next_to_a_found_one_is_still_hidden() -> None:
    observed = [Observed(-1, (face(100), face(300))), Observed(0, (face(100),))]

    boxes, added = boxes_at(0, observed, reach=2)

    assert same(boxes, (face(100), grown(face(300), GROWTH * SIZE)))
    assert added == 1


def test_every_distinct_object_of_the_window_is_hidden_nearest_detection_first() -> None:
    observed = [Observed(-2, (face(0),)), Observed(-1, (face(200),)), Observed(0, (face(300),))]
    observed += [Observed(1, (face(400),)), Observed(2, (face(600),))]

    boxes, added = boxes_at(0, observed, reach=2)

    assert [round(box.left + box.right) // 2 for box in boxes] == [320, 220, 420, 20, 620]  # centres: own first
    assert added == 4


def test_interpolated_boxes_keep_the_higher_confidence() -> None:
    observed = [Observed(0, (face(100, confidence=0.4),)), Observed(2, (face(120, confidence=0.8),))]
    (box,), _ = boxes_at(1, observed, reach=1)
    assert box.confidence == 0.8


def test_detections_outside_the_window_are_ignored() -> None:
    assert boxes_at(10, moving(range(0, 3)), reach=2) == ((), 0)
    assert boxes_at(0, [Observed(3, (face(100),))], reach=2) == ((), 0)


def test_iou() -> None:
    assert iou(face(0), face(0)) == 1.0
    assert iou(face(0), face(40)) == 0.0
    assert iou(face(0), face(20)) == 800 / 2400
    inverted = Box(40, 50, 0, 10, "face")
    assert iou(inverted, face(0)) == 1.0
    assert iou(Box(0, 0, 0, 0, "face"), Box(0, 0, 0, 0, "face")) == 0.0

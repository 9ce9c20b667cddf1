"""Temporal smoothing: which boxes frame t hides, given the frames around it."""

from __future__ import annotations

import numpy as np

from processor.frames import Box, Localization
from processor.video.smoothing import iou, smooth

LABELS = frozenset({"face", "license_plate"})


def face(left: float, top: float = 10.0, size: float = 40.0) -> Box:
    return Box(left, top, left + size, top + size, "face", 0.9)


def frame(*faces: Box, plates: tuple[Box, ...] = ()) -> list[Localization]:
    """One frame's localizations for a configuration of two entries: faces, then plates."""
    return [Localization("face", faces), Localization("license_plate", plates)]


def test_a_one_frame_miss_is_filled_by_both_neighbours() -> None:
    smoothed = smooth(frame(), past=[frame(face(100))], future=[frame(face(140))], labels=LABELS)
    assert smoothed.localizations[0].boxes == (face(100), face(140))
    assert smoothed.added == [2, 0]


def test_a_box_found_in_every_frame_is_kept_once() -> None:
    same = frame(face(100))
    smoothed = smooth(same, past=[same, same], future=[same, same], labels=LABELS)
    assert smoothed.localizations[0].boxes == (face(100),)
    assert smoothed.added == [0, 0]


def test_an_object_the_frame_found_itself_gets_no_neighbour_boxes() -> None:
    moved = [frame(face(110)), frame(face(120))]  # IoU 0.6 and 0.33 with the frame's own box
    smoothed = smooth(frame(face(100)), past=moved, future=moved, labels=LABELS)
    assert smoothed.localizations[0].boxes == (face(100),)


def test_a_missed_moving_face_gets_both_neighbours_boxes_unless_they_coincide() -> None:
    smoothed = smooth(frame(), past=[frame(face(100))], future=[frame(face(101)), frame(face(120))], labels=LABELS)
    assert smoothed.localizations[0].boxes == (face(100), face(120))


def test_neighbours_nearest_first_so_the_nearest_box_is_kept_among_near_duplicates() -> None:
    far, near = frame(face(99)), frame(face(100))
    smoothed = smooth(frame(), past=[far, near], future=[], labels=LABELS)
    assert smoothed.localizations[0].boxes == (face(100),)


def test_every_distinct_region_of_the_window_is_hidden() -> None:
    past = [frame(face(0)), frame(face(200))]
    future = [frame(face(400)), frame(face(600))]
    smoothed = smooth(frame(face(300)), past=past, future=future, labels=LABELS)
    assert [box.left for box in smoothed.localizations[0].boxes] == [300, 200, 400, 0, 600]  # own, then nearest
    assert smoothed.added == [4, 0]


def test_a_second_face_missed_next_to_a_found_one_is_still_hidden() -> None:
    smoothed = smooth(frame(face(100)), past=[frame(face(100), face(300))], future=[], labels=LABELS)
    assert smoothed.localizations[0].boxes == (face(100), face(300))
    assert smoothed.added == [1, 0]


def test_labels_not_smoothed_are_returned_unchanged() -> None:
    plate = Box(10, 10, 90, 30, "license_plate")
    smoothed = smooth(frame(), past=[frame(face(5), plates=(plate,))], future=[], labels=frozenset({"face"}))
    assert smoothed.localizations[0].boxes == (face(5),)
    assert smoothed.localizations[1].boxes == ()
    assert smoothed.added == [1, 0]


def test_masks_are_not_smoothed() -> None:
    mask = np.zeros((8, 8), np.bool_)
    person = Localization("face", (face(1),), mask=mask)
    smoothed = smooth([person], past=[[Localization("face", (face(300),))]], future=[], labels=LABELS)
    assert smoothed.localizations[0] is person
    smoothed = smooth([Localization("face")], past=[[person]], future=[], labels=LABELS)
    assert smoothed.localizations[0].boxes == ()


def test_no_neighbours_at_the_edges_of_a_video() -> None:
    smoothed = smooth(frame(face(7)), past=[], future=[], labels=LABELS)
    assert smoothed.localizations[0].boxes == (face(7),)
    assert smoothed.added == [0, 0]


def test_iou() -> None:
    assert iou(face(0), face(0)) == 1.0
    assert iou(face(0), face(40)) == 0.0
    assert iou(face(0), face(20)) == 800 / 2400
    inverted = Box(40, 50, 0, 10, "face")
    assert iou(inverted, face(0)) == 1.0
    assert iou(Box(0, 0, 0, 0, "face"), Box(0, 0, 0, 0, "face")) == 0.0

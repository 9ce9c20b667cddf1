"""Keyframe choices: scene cuts on real photos and synthetic frames, and when two keyframes disagree."""

from __future__ import annotations

import cv2
import numpy as np

from processor.frames import Box
from processor.video.keyframes import SIGNATURE_SIZE, needs_middle, scene_cut, signature
from tests.frames import astronaut, grace_hopper
from tests.videos import Clip


def face(left: float, size: float = 40.0) -> Box:
    return Box(left, 10, left + size, 10 + size, "face", 0.9)


def test_a_change_of_photo_is_a_scene_cut() -> None:
    hopper = cv2.resize(grace_hopper(), (512, 512))
    assert scene_cut(signature(astronaut()), signature(hopper))
    assert scene_cut(signature(hopper), signature(255 - hopper))


def test_motion_within_a_scene_is_not_a_cut() -> None:
    clip = Clip()  # a head sliding across drifting bands, 3 px of drift per frame
    for index in (0, 10, 40):
        assert not scene_cut(signature(clip.frame(index)), signature(clip.frame(index + 1)))
    photo = astronaut()
    assert not scene_cut(signature(photo), signature(np.roll(photo, 12, axis=1)))
    assert not scene_cut(signature(photo), signature(np.clip(photo.astype(np.int16) + 20, 0, 255).astype(np.uint8)))


def test_the_signature_is_a_small_grey_thumbnail() -> None:
    thumbnail = signature(np.full((1080, 1920, 3), 200, np.uint8))
    assert thumbnail.shape == (SIGNATURE_SIZE[1], SIGNATURE_SIZE[0])
    assert float(thumbnail.mean()) == 200.0


def test_agreeing_keyframes_need_no_frame_in_between() -> None:
    assert not needs_middle([], [])
    assert not needs_middle([face(100)], [face(110)])  # a quarter of its size
    assert not needs_middle([face(100), face(300)], [face(300), face(105)])


def test_an_object_at_one_end_only_needs_no_middle_frame() -> None:
    assert not needs_middle([face(100)], [])  # its track is extended over the frames between
    assert not needs_middle([], [face(100)])
    assert not needs_middle([face(100)], [face(100), face(300)])


def test_unmatched_objects_at_both_ends_need_the_middle_frame() -> None:
    assert needs_middle([face(100)], [face(160)])  # no overlap: maybe one face that moved far
    assert needs_middle([face(100), face(300)], [face(300), face(500)])


def test_a_large_step_needs_the_middle_frame() -> None:
    assert needs_middle([face(100, 100)], [face(160, 100)])  # IoU 0.25: matched, but moved 0.6 of its width
    assert needs_middle([Box(100, 10, 200, 110, "face")], [Box(100, 70, 200, 170, "face")])  # 0.6 of its height
    assert needs_middle([face(100)], [face(135)])  # a small box: more than 32 px


def test_a_small_box_moving_a_few_pixels_is_the_same_object() -> None:
    assert not needs_middle([face(100, 17)], [face(131, 17)])  # no overlap, but 31 px at the same size
    assert needs_middle([face(100, 17)], [face(131, 40)])  # another size: another object

"""Hiding boxes and masks of real photos: geometry (clamp, scale, ellipse), each region once, only its pixels."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from processor.anonymize import apply_boxes, apply_mask, clamp_box, register_technique, registry, techniques
from processor.anonymize.regions import box_region, mask_regions
from processor.errors import InvalidConfiguration
from processor.frames import BgrImage, BoolMask, Box
from tests.frames import ASTRONAUT_FACE, astronaut, grace_hopper


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Techniques registered by a test stay in that test."""
    monkeypatch.setattr(registry, "_registry", registry.TechniqueRegistry(registry.BUILTIN_TECHNIQUES))


def box(left: float, top: float, right: float, bottom: float) -> Box:
    return Box(left, top, right, bottom, "face")


def changed(before: BgrImage, after: BgrImage) -> BoolMask:
    return np.asarray(np.any(before != after, axis=2))


def no_zeros(image: BgrImage) -> BgrImage:
    """The photo with every 0 raised to 1, so that blackening at d = 1 marks exactly the pixels it changed."""
    return np.maximum(image, 1)


def test_blurring_a_face_changes_it_strongly_and_nothing_outside_the_box() -> None:
    before = astronaut()
    after = before.copy()
    left, top, right, bottom = ASTRONAUT_FACE
    assert apply_boxes(after, [box(left, top, right, bottom)], "blurring", 1.0) == 1
    face_difference = np.abs(after[top:bottom, left:right].astype(np.int16) - before[top:bottom, left:right])
    assert face_difference.mean() > 12
    outside = np.ones(before.shape[:2], bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(after[outside], before[outside])


@pytest.mark.parametrize("technique", ["blurring", "pixelating", "blackening", "filling"])
def test_degree_zero_leaves_the_frame_unchanged(technique: str) -> None:
    before = grace_hopper()
    after = before.copy()
    assert apply_boxes(after, [box(100, 100, 300, 300), box(250, 250, 400, 500)], technique, 0.0) == 2
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize(
    ("coordinates", "expected"),
    [
        ((10, 20, 50, 60), (10, 20, 50, 60)),
        ((10.2, 20.7, 49.1, 59.5), (10, 20, 50, 60)),  # rounded outward: every touched pixel is covered
        ((50, 60, 10, 20), (10, 20, 50, 60)),  # inverted
        ((-30, -5, 40, 25), (0, 0, 40, 25)),  # over the top-left corner
        ((480, 490, 600, 700), (480, 490, 512, 512)),  # over the bottom-right corner
        ((600, 10, 700, 50), None),  # entirely outside
        ((-100, -100, -1, -1), None),
        ((30, 30, 30, 80), None),  # zero width
        ((30, 30, 31, 30), None),  # zero height
        ((math.nan, 0, 10, 10), None),
        ((0, 0, math.inf, 10), None),
        ((511.5, 0, 513, 1e9), (511, 0, 512, 512)),
    ],
)
def test_clamp_box(coordinates: tuple[float, float, float, float], expected: tuple[int, ...] | None) -> None:
    assert clamp_box(box(*coordinates), 512, 512) == expected


def test_odd_boxes_never_raise_and_only_real_ones_are_hidden() -> None:
    image = no_zeros(astronaut())
    before = image.copy()
    boxes = [
        box(-30, -5, 40, 25),
        box(480.3, 490.9, 600, 700),
        box(50, 60, 10, 20),
        box(600, 10, 700, 50),
        box(30, 30, 30, 80),
        box(math.nan, 0, 10, 10),
        box(-1e308, -1e308, 1e308, 1e308),  # not finite once scaled: skipped
    ]
    assert apply_boxes(image, boxes, "blackening", 1.0, scale=2.0, ellipse=True) == 3
    assert apply_boxes(image, boxes, "blurring", 1.0) == 4  # the huge box too, unscaled
    assert changed(before, image)[0, 0]
    assert changed(before, image)[511, 511]
    assert changed(before, image).mean() > 0.95  # the huge box covers the whole frame


def test_scale_grows_the_box_about_its_centre_and_is_clamped() -> None:
    image = no_zeros(grace_hopper())
    apply_boxes(image, [box(100, 100, 140, 120)], "blackening", 1.0, scale=2.0)
    hidden = ~image.any(axis=2)
    rows, columns = np.flatnonzero(hidden.any(axis=1)), np.flatnonzero(hidden.any(axis=0))
    assert (rows[0], rows[-1] + 1, columns[0], columns[-1] + 1) == (90, 130, 80, 160)
    assert hidden[90:130, 80:160].all()
    assert hidden.sum() == 40 * 80
    assert clamp_box(box(0, 0, 20, 30), 512, 600, scale=3.0) == (0, 0, 40, 60)
    assert clamp_box(box(500, 580, 512, 600), 512, 600, scale=2.0) == (494, 570, 512, 600)


def test_ellipse_changes_only_the_pixels_touching_the_inscribed_ellipse() -> None:
    image = no_zeros(astronaut())
    before = image.copy()
    left, top, right, bottom = 100.0, 150.0, 220.0, 330.0
    assert apply_boxes(image, [box(left, top, right, bottom)], "blackening", 1.0, ellipse=True) == 1
    hidden = changed(before, image)
    # Distance of each pixel square's nearest point to the centre, in semi-axes: <= 1 means it touches the ellipse.
    ys, xs = np.mgrid[0:512, 0:512]
    centre_x, centre_y, semi_x, semi_y = (left + right) / 2, (top + bottom) / 2, (right - left) / 2, (bottom - top) / 2
    near_x, near_y = np.clip(centre_x, xs, xs + 1), np.clip(centre_y, ys, ys + 1)
    touching = ((near_x - centre_x) / semi_x) ** 2 + ((near_y - centre_y) / semi_y) ** 2 <= 1
    in_box = (xs >= left) & (xs < right) & (ys >= top) & (ys < bottom)  # not the pixels meeting it on an edge
    np.testing.assert_array_equal(hidden, touching & in_box)
    assert not hidden[int(top), int(left)]  # corners of the box stay
    assert hidden[int(centre_y), int(left)]
    assert not image[hidden].any()


def test_an_ellipse_cut_by_the_border_keeps_its_shape() -> None:
    region = box_region(box(-100, -50, 100, 50), 512, 512, ellipse=True)
    assert region is not None
    assert region.select is not None
    assert (region.left, region.top, region.right, region.bottom) == (0, 0, 100, 50)
    assert region.select[0, :99].all()  # the half-ellipse's straight edge lies on the image border
    assert not region.select[49, 99]  # its far corner is outside the ellipse


def test_an_ellipse_that_misses_every_pixel_is_not_counted() -> None:
    image = astronaut()
    before = image.copy()
    # The box reaches into the image only with its corner; the ellipse does not.
    assert apply_boxes(image, [box(-100, -100, 3, 3)], "blackening", 1.0, ellipse=True) == 0
    np.testing.assert_array_equal(image, before)


def test_overlapping_boxes_hide_each_pixel_once_from_the_original() -> None:
    image = grace_hopper()
    before = image.copy()
    boxes = [box(100, 100, 300, 300), box(200, 200, 400, 400), box(150, 150, 250, 250)]
    assert apply_boxes(image, boxes, "blackening", 0.5) == 3
    covered = np.zeros(image.shape[:2], bool)
    for left, top, right, bottom in ((100, 100, 300, 300), (200, 200, 400, 400)):
        covered[top:bottom, left:right] = True
    np.testing.assert_array_equal(image[covered], np.rint(before[covered] * 0.5).astype(np.uint8))
    np.testing.assert_array_equal(image[~covered], before[~covered])


def test_each_box_is_hidden_exactly_once() -> None:
    calls: list[tuple[int, int]] = []

    @register_technique("test-counting")
    def counting(patch: BgrImage, degree: float) -> BgrImage:
        calls.append(patch.shape[:2])
        return patch

    boxes = [box(10, 10, 60, 60), box(40, 40, 90, 90), box(10, 10, 60, 60), box(300, 300, 310, 305)]
    assert apply_boxes(astronaut(), boxes, "test-counting", 1.0) == 4
    assert sorted(calls) == [(5, 10), (50, 50), (50, 50), (50, 50)]


def test_in_an_overlap_the_larger_box_wins() -> None:
    image = grace_hopper()
    small, large = box(150, 150, 250, 250), box(100, 100, 400, 400)
    apply_boxes(image, [large, small], "filling", 1.0)
    mean = np.rint(grace_hopper()[100:400, 100:400].reshape(-1, 3).mean(axis=0))
    assert (image[100:400, 100:400] == mean).all()


def person_mask(height: int, width: int) -> BoolMask:
    """Two person-like blobs, a ring holding an island in its hole, and speckles (some touching diagonally)."""
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (130, 300), (70, 200), 0, 0, 360, 1, thickness=cv2.FILLED)
    cv2.ellipse(mask, (260, 320), (60, 180), 0, 0, 360, 1, thickness=cv2.FILLED)  # its box meets the first's
    cv2.circle(mask, (420, 120), 60, 1, thickness=20)
    cv2.circle(mask, (420, 120), 12, 1, thickness=cv2.FILLED)
    speckles = np.random.default_rng(5).random((height, width)) < 0.002
    mask[speckles] = 1
    mask[500, 10] = mask[501, 11] = 1  # 8-connected: one region
    return mask.astype(bool)


def test_a_mask_changes_every_mask_pixel_and_nothing_else() -> None:
    image = no_zeros(grace_hopper())
    before = image.copy()
    mask = person_mask(*image.shape[:2])
    count = apply_mask(image, mask, "blackening", 1.0)
    np.testing.assert_array_equal(changed(before, image), mask)
    assert not image[mask].any()
    speckle_regions, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    assert count == len(speckle_regions)


@pytest.mark.parametrize("technique", ["blurring", "pixelating", "filling"])
def test_a_mask_region_is_hidden_relative_to_its_own_bounding_box(technique: str) -> None:
    image = astronaut()
    before = image.copy()
    before.flags.writeable = False  # kernels given a writable patch write into it
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(mask, (150, 250), (100, 200), 0, 0, 360, 1, thickness=cv2.FILLED)  # large: box 201 x 401
    cv2.circle(mask, (420, 80), 20, 1, thickness=cv2.FILLED)  # small: box 41 x 41
    assert apply_mask(image, mask.astype(bool), technique, 0.6) == 2
    for left, top, right, bottom in ((50, 50, 251, 451), (400, 60, 441, 101)):
        patch = before[top:bottom, left:right]
        inside = mask[top:bottom, left:right].astype(bool)
        expected = {"blurring": techniques.blur, "pixelating": techniques.pixelate, "filling": techniques.fill}
        np.testing.assert_array_equal(image[top:bottom, left:right][inside], expected[technique](patch, 0.6)[inside])
    np.testing.assert_array_equal(image[mask == 0], before[mask == 0])


def test_mask_regions_cover_the_mask_exactly_once() -> None:
    mask = person_mask(600, 512)
    total = np.zeros(mask.shape, np.int32)
    for region in mask_regions(mask):
        assert region.select is not None
        total[region.top : region.bottom, region.left : region.right] += region.select
    np.testing.assert_array_equal(total, mask.astype(np.int32))


def test_an_empty_mask_hides_nothing() -> None:
    image = astronaut()
    assert apply_mask(image, np.zeros(image.shape[:2], bool), "blurring", 1.0) == 0
    np.testing.assert_array_equal(image, astronaut())


def test_a_mask_of_another_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="mask shape"):
        apply_mask(astronaut(), np.ones((10, 10), bool), "blurring", 1.0)


def test_a_bgr_view_of_an_rgb_array_is_written_through() -> None:
    rgb = no_zeros(np.ascontiguousarray(astronaut()[:, :, ::-1]))
    bgr = rgb[:, :, ::-1]  # reversed channel stride: OpenCV cannot write into it, numpy can
    mask = person_mask(512, 512)
    assert not mask[[300, 360], [400, 450]].any()
    apply_mask(bgr, mask, "blackening", 1.0)
    apply_boxes(bgr, [box(400, 300, 500, 420)], "blackening", 1.0, ellipse=True)
    assert not rgb[mask].any()
    assert not rgb[360, 450].any()  # the ellipse's centre
    assert rgb[300, 400].all()  # the box's corner


@pytest.mark.parametrize("degree", [-0.1, 1.5, math.nan])
def test_a_degree_outside_zero_one_is_a_configuration_error(degree: float) -> None:
    with pytest.raises(InvalidConfiguration, match="degree"):
        apply_boxes(astronaut(), [box(0, 0, 10, 10)], "blurring", degree)
    with pytest.raises(InvalidConfiguration, match="degree"):
        apply_mask(astronaut(), np.ones((512, 512), bool), "blurring", degree)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_a_scale_that_is_not_a_positive_number_is_an_error(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        apply_boxes(astronaut(), [box(0, 0, 10, 10)], "blurring", 1.0, scale=scale)


def test_a_technique_returning_another_shape_is_an_error() -> None:
    @register_technique("test-cropping")
    def cropping(patch: BgrImage, degree: float) -> BgrImage:
        return patch[1:]

    with pytest.raises(ValueError, match="technique returned"):
        apply_boxes(astronaut(), [box(0, 0, 10, 10)], "test-cropping", 1.0)


def test_a_technique_returning_a_view_of_its_patch_is_written_safely() -> None:
    @register_technique("test-mirroring")
    def mirroring(patch: BgrImage, degree: float) -> BgrImage:
        return patch[::-1, ::-1]

    image = astronaut()
    apply_boxes(image, [box(100, 100, 200, 180)], "test-mirroring", 1.0, ellipse=True)
    apply_boxes(image, [box(300, 300, 400, 380)], "test-mirroring", 1.0)
    np.testing.assert_array_equal(image[300:380, 300:400], astronaut()[300:380, 300:400][::-1, ::-1])
    assert (image[140, 100:200] == astronaut()[139, 100:200][::-1]).all()

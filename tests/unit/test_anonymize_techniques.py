"""The built-in kernels on real faces: exact degree semantics, pixel cells, and a blur relative to the region's size."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from processor.anonymize import techniques
from processor.frames import BgrImage
from tests.frames import astronaut, face_crop, grace_hopper

KERNELS = {
    "blackening": techniques.blacken,
    "blurring": techniques.blur,
    "filling": techniques.fill,
    "pixelating": techniques.pixelate,
}


def feature_energy(image: BgrImage) -> float:
    """Energy of the band where a face's features live (eyes, mouth, glasses: 2-8 % of the face), size-relative."""
    size = min(image.shape[:2])
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    fine = cv2.GaussianBlur(grey, (0, 0), 0.02 * size)
    coarse = cv2.GaussianBlur(grey, (0, 0), 0.08 * size)
    return float(np.mean((fine - coarse) ** 2))


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 9, 3), (9, 1, 3), (2, 3, 3), (5, 400, 3), (97, 61, 3)])
def test_kernels_keep_shape_and_never_change_their_input(name: str, shape: tuple[int, int, int]) -> None:
    patch = np.ascontiguousarray(cv2.resize(astronaut(), shape[1::-1], interpolation=cv2.INTER_AREA))
    original = patch.copy()
    patch.flags.writeable = False  # the engine passes read-only views of the frame: a write would raise
    for degree in (0.0, 1e-300, 0.01, 0.25, 0.5, 0.75, 1.0):
        hidden = KERNELS[name](patch, degree)
        assert hidden.shape == shape
        assert hidden.dtype == np.uint8
    np.testing.assert_array_equal(patch, original)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("degree", [0.1, 0.25, 0.6, 1.0])
def test_kernels_given_a_writable_patch_write_the_same_result_into_it(name: str, degree: float) -> None:
    frame = grace_hopper()
    expected = KERNELS[name](face_crop("grace_hopper", 150), degree)
    patch = frame[100 : 100 + expected.shape[0], 50 : 50 + expected.shape[1]]  # a view of a frame, as the engine gives
    patch[...] = face_crop("grace_hopper", 150)
    assert KERNELS[name](patch, degree) is patch
    np.testing.assert_array_equal(patch, expected)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_degree_zero_leaves_the_patch_unchanged(name: str) -> None:
    patch = face_crop("grace_hopper", 120)
    np.testing.assert_array_equal(KERNELS[name](patch, 0.0), patch)


def test_blackening_is_exactly_zero_at_one_and_scales_the_input() -> None:
    patch = face_crop("astronaut", 100)
    assert not KERNELS["blackening"](patch, 1.0).any()
    np.testing.assert_array_equal(techniques.blacken(patch, 0.5), np.rint(patch * 0.5).astype(np.uint8))
    assert (techniques.blacken(patch, 0.25) <= patch).all()


def test_pixelating_at_a_quarter_gives_a_4x4_grid_of_one_colour_cells() -> None:
    patch = face_crop("grace_hopper", 130)  # 130 x 115: cell spans of 32-33 and 28-30 px
    cells = techniques.pixelate(patch, 0.25)
    row_starts = [0, *np.flatnonzero(np.any(cells[1:] != cells[:-1], axis=(1, 2))) + 1, cells.shape[0]]
    column_starts = [0, *np.flatnonzero(np.any(cells[:, 1:] != cells[:, :-1], axis=(0, 2))) + 1, cells.shape[1]]
    assert len(row_starts) == 5
    assert len(column_starts) == 5
    assert max(np.diff(row_starts)) - min(np.diff(row_starts)) <= 2
    assert max(np.diff(column_starts)) - min(np.diff(column_starts)) <= 2
    errors = []
    for top, bottom in itertools.pairwise(row_starts):
        for left, right in itertools.pairwise(column_starts):
            cell = cells[top:bottom, left:right].reshape(-1, 3)
            assert (cell == cell[0]).all()
            # Each cell has about the mean colour of the pixels under it (area resampling, fractional edges).
            errors.append(np.abs(cell[0] - patch[top:bottom, left:right].reshape(-1, 3).mean(axis=0)).max())
    assert np.mean(errors) < 1.5
    assert max(errors) < 5


@pytest.mark.parametrize("degree", [0.51, 0.75, 1.0])
def test_pixelating_above_a_half_gives_one_mean_colour(degree: float) -> None:
    patch = face_crop("astronaut", 90)
    hidden = techniques.pixelate(patch, degree)
    mean = patch.reshape(-1, 3).mean(axis=0)
    assert (hidden == hidden[0, 0]).all()
    assert np.abs(hidden[0, 0] - mean).max() <= 0.5


def test_pixelating_with_more_cells_than_pixels_is_unchanged() -> None:
    patch = face_crop("astronaut", 20)
    np.testing.assert_array_equal(techniques.pixelate(patch, 0.01), patch)


def test_filling_blends_towards_the_mean_colour() -> None:
    patch = face_crop("grace_hopper", 80)
    mean = np.rint(patch.reshape(-1, 3).mean(axis=0))
    solid = techniques.fill(patch, 1.0)
    assert (solid == mean).all()
    half = techniques.fill(patch, 0.5).astype(np.int16)
    assert np.abs(half - np.rint(patch * 0.5 + mean * 0.5)).max() <= 1


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("size", [40, 400])
def test_blurring_at_one_removes_a_faces_features_at_any_size(photo: str, size: int) -> None:
    patch = face_crop(photo, size)
    assert feature_energy(techniques.blur(patch, 1.0)) < 0.02 * feature_energy(patch)


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_blurring_strength_is_relative_to_the_region_size(photo: str) -> None:
    small, large = face_crop(photo, 40), face_crop(photo, 400)
    for degree in (0.25, 0.5):
        kept_small = feature_energy(techniques.blur(small, degree)) / feature_energy(small)
        kept_large = feature_energy(techniques.blur(large, degree)) / feature_energy(large)
        assert 0.5 < kept_small / kept_large < 2.0
        # Blurring the large face and shrinking it gives the blurred small face.
        shrunk = cv2.resize(techniques.blur(large, degree), small.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(shrunk.astype(np.int16) - techniques.blur(small, degree)).mean() < 4
    # The metric tells them apart: the original's fixed sigma (25 * d px) barely touches the large face.
    fixed_small = feature_energy(cv2.GaussianBlur(small, (0, 0), 12.5)) / feature_energy(small)
    fixed_large = feature_energy(cv2.GaussianBlur(large, (0, 0), 12.5)) / feature_energy(large)
    assert fixed_large / fixed_small > 10


@pytest.mark.parametrize("size", [70, 160, 300])
def test_fast_blur_matches_a_direct_gaussian(size: int) -> None:
    patch = np.ascontiguousarray(cv2.resize(grace_hopper(), (size, round(size * 1.17)), interpolation=cv2.INTER_CUBIC))
    sigma = techniques.BLUR_SIGMA_PER_SIZE * size
    direct = cv2.GaussianBlur(patch.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    assert np.abs(techniques.blur(patch, 1.0) - direct).mean() < 2.5

"""The kernel benchmark's scene and rows (tiny frames, one run: the figures themselves are not asserted)."""

from __future__ import annotations

import json

import pytest

from processor.bench.kernels import RESOLUTIONS, blob_mask, face_boxes, format_table, run_kernel_bench, tiled_frame


@pytest.mark.parametrize(("width", "height"), RESOLUTIONS)
def test_scene_is_a_photo_frame_with_20_boxes_inside_and_a_mask_of_about_45_percent(width: int, height: int) -> None:
    frame = tiled_frame(width, height)
    assert frame.shape == (height, width, 3)
    assert frame.std() > 30  # a photo, not a flat colour
    boxes = face_boxes(width, height)
    assert len(boxes) == 20
    assert all(0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height for box in boxes)
    assert 0.42 < blob_mask(width, height).mean() < 0.50


def test_rows_compare_every_kernel_with_the_reference_and_the_codec() -> None:
    rows = run_kernel_bench([(320, 256)], repeat=1, techniques=["blurring", "blackening"])
    assert {(row["case"], row["kernel"]) for row in rows} == {
        (case, kernel) for case in ("boxes", "mask") for kernel in ("blurring", "blackening", "reference", "codec")
    }
    for row in rows:
        assert row["resolution"] == "320x256"
        assert isinstance(row["ms"], float)
        assert row["ms"] > 0
        if row["kernel"] == "reference":
            assert row["vs_reference"] == 1.0
        if row["kernel"] == "codec":
            assert row["share_of_codec"] == 1.0
        assert ("mask_share" in row) == (row["case"] == "mask")
    json.dumps(rows)
    table = format_table(rows)
    assert len(table.splitlines()) == len(rows) + 1
    assert "reference" in table


def test_an_unknown_technique_is_refused_before_measuring() -> None:
    with pytest.raises(ValueError, match="swirling"):
        run_kernel_bench([(320, 256)], repeat=1, techniques=["swirling"])

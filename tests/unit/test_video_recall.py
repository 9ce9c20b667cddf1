"""The video recall harness's option parsing and its false-hidden measure."""

from __future__ import annotations

import numpy as np
import pytest

from processor.bench.video_recall import false_hidden_blocks, parse_variant
from processor.settings import VideoSettings


def test_a_variant_overrides_video_settings_with_typed_values() -> None:
    base = VideoSettings()
    variant = parse_variant("smoothing_frames=0, preset=ultrafast,keep_audio=false", base)
    assert (variant.smoothing_frames, variant.preset, variant.keep_audio) == (0, "ultrafast", False)
    assert variant.crf == base.crf


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("detect_everyy=4", "unknown video setting 'detect_everyy'"),
        ("smoothing_frames", "expected key=value"),
        ("crf=99", "crf"),
        ("preset=quick", "preset"),
    ],
)
def test_bad_variants_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_variant(text, VideoSettings())


def test_false_hidden_counts_changed_blocks_outside_the_truth_boxes_only() -> None:
    before = np.full((64, 64, 3), 100, np.uint8)
    after = before.copy()
    after[0:16, 0:16] = 0  # 4 blocks changed inside the truth box
    after[32:40, 32:48] = 0  # 2 blocks changed outside it
    after[48:56, 48:56] = 105  # 1 block changed within the tolerance
    assert false_hidden_blocks(before, after, [(0.0, 0.0, 16.0, 16.0)]) == (2, 64 - 4)

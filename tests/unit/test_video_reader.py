"""What a video file says it lasts: the stream's duration field, else Matroska's per-stream DURATION tag."""

from __future__ import annotations

from fractions import Fraction

import pytest

from processor.video.reader import stated_duration_s


@pytest.mark.parametrize(
    ("duration", "tags", "expected"),
    [
        (180_000, {"DURATION": "01:00:00.000000000"}, 2.0),  # the field wins over a tag
        (None, {"DURATION": "00:00:02.021000000"}, 2.021),
        (None, {"DURATION": "01:02:03.5"}, 3723.5),
        (None, {}, None),  # MPEG-TS: nothing stated
        (None, {"DURATION": "soon"}, None),
        (None, {"DURATION": "00:xx:01.0"}, None),
    ],
)
def test_the_stated_duration(duration: int | None, tags: dict[str, str], expected: float | None) -> None:
    assert stated_duration_s(duration, Fraction(1, 90_000), tags) == (pytest.approx(expected) if expected else None)

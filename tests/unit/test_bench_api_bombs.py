"""The api-bombs part's row: latency figures of the camera photo, from the latencies its client measured."""

from __future__ import annotations

import cv2
import numpy as np

from processor.bench.api_bombs import Tally, bomb_jpeg, summarize


def test_a_row_gives_the_median_p95_and_max_of_the_camera_latencies() -> None:
    tally = Tally(camera_ms=[40.0, 10.0, 30.0, 20.0, 1000.0], camera_errors=1, bombs=7, bomb_errors=2)
    row = summarize("bombed", 8, 15.04, tally, 512.25)
    assert row == {
        "scenario": "bombed", "bombers": 8, "seconds": 15.0, "camera_requests": 5, "camera_errors": 1,
        "median_ms": 30.0, "p95_ms": 808.0, "max_ms": 1000.0, "bombs_done": 7, "bomb_errors": 2,
        "peak_rss_mib": 512.2,
    }  # fmt: skip


def test_a_scenario_whose_every_camera_request_failed_has_no_latency_figures() -> None:
    row = summarize("quiet", 0, 3.0, Tally(camera_errors=4), None)
    assert (row["camera_requests"], row["median_ms"], row["p95_ms"], row["max_ms"]) == (0, None, None, None)
    assert row["camera_errors"] == 4 and row["peak_rss_mib"] is None


def test_the_bomb_is_a_jpeg_of_the_size_asked_for() -> None:
    image = cv2.imdecode(np.frombuffer(bomb_jpeg((800, 600)), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (600, 800, 3)

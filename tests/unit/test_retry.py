"""The one backoff formula."""

from __future__ import annotations

import random

from processor.retry import backoff_s


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(3)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 10.0)]:
        delays = [backoff_s(attempt, 0.5, 10.0, None, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert len(set(delays)) > 100  # jittered: events failing together do not retry together


def test_backoff_honours_retry_after_within_the_cap() -> None:
    rng = random.Random(3)
    assert backoff_s(1, 0.1, 10.0, 4.0, rng) == 4.0
    assert backoff_s(1, 0.1, 10.0, 60.0, rng) == 10.0

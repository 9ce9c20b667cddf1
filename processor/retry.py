"""The one backoff formula of every retry loop (the inference client's per request, the stream worker's per event).

Tries nest: the worker tries an event up to ``stream.max_attempts`` times and each try's inference request is tried
up to ``inference.max_attempts`` times, so one event makes at most ``stream.max_attempts × inference.max_attempts``
HTTP tries of one request per ``sensitive_info`` entry (4 × 3 = 12 with the defaults); an unhealthy URL fails fast
without a request until its next probe, so a service that is down sees far fewer.
"""

from __future__ import annotations

import random


def backoff_s(attempt: int, base_s: float, cap_s: float, retry_after_s: float | None, rng: random.Random) -> float:
    """Delay before try ``attempt + 1``: ``base * 2**(attempt - 1)`` capped, jittered to [½, 1] of itself so that
    callers failing together do not retry together; at least the server's ``Retry-After`` (capped too)."""
    delay = min(cap_s, base_s * 2 ** (attempt - 1))
    jittered = rng.uniform(delay / 2, delay)
    return max(jittered, min(retry_after_s, cap_s)) if retry_after_s is not None else jittered

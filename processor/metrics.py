"""Prometheus metrics: every metric object of the processor in one registry, and the calls that update them.

Names follow Prometheus conventions (``anonymizer_`` prefix, ``_duration_seconds`` histograms, ``_total``
counters, ``anonymizer_build_info``; no ``_created`` series). Label values are
bounded: stages and error kinds are fixed sets, URLs are registered ones (or ``builtin``), routes are the route
table's paths. The stream worker, the API and the CLI call the ``record_*``/``observe_*`` functions below;
``render(role)`` gives the text exposition for ``GET /metrics``.

Each role exports only what means something there: ``run`` everything; ``serve`` no stream metrics (events,
partitions, lag); ``infer`` the process, the build and its HTTP requests (count, duration, in flight).
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import Collector

from processor import __version__
from schemas.results import FrameResult

# ``*_created`` series double the exposition and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

Role = Literal["run", "serve", "infer"]
REGISTRY = CollectorRegistry(auto_describe=True)
"""``anonymizer run``'s: every metric."""
SERVE_REGISTRY = CollectorRegistry(auto_describe=True)
INFER_REGISTRY = CollectorRegistry(auto_describe=True)
_REGISTRIES: dict[Role, CollectorRegistry] = {"run": REGISTRY, "serve": SERVE_REGISTRY, "infer": INFER_REGISTRY}
_ALL: tuple[Role, ...] = ("run", "serve", "infer")
_FRAMES: tuple[Role, ...] = ("run", "serve")  # roles that anonymize frames

C = TypeVar("C", bound=Collector)


def _exported(collector: C, roles: tuple[Role, ...]) -> C:
    for role in roles:
        _REGISTRIES[role].register(collector)
    return collector


_exported(ProcessCollector(registry=None), _ALL)
_exported(PlatformCollector(registry=None), _ALL)
BUILD_INFO = _exported(Info("anonymizer_build", "The running processor's version", registry=None), _ALL)
BUILD_INFO.info({"version": __version__, "python": platform.python_version()})

STAGES = ("fetch", "decode", "localize", "anonymize", "encode", "put", "total")
"""Stages whose ``FrameResult.timings_ms`` are observed (the stream adds fetch and put to the pipeline's)."""

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

EVENTS_CONSUMED = _exported(
    Counter(
        "anonymizer_events_consumed",
        "Frame events taken from the source (a record may hold several)",
        registry=None,
    ),
    ("run",),
)
EVENTS_COMPLETED = _exported(
    Counter(
        "anonymizer_events_completed",
        "Events anonymized, stored and announced by a completion event",
        registry=None,
    ),
    ("run",),
)
EVENTS_DEAD_LETTERED = _exported(
    Counter(
        "anonymizer_events_dead_lettered",
        "Events (or unparsable records) dead-lettered, by error kind",
        ["kind"],
        registry=None,
    ),
    ("run",),
)
EVENTS_RETRIED = _exported(
    Counter(
        "anonymizer_events_retried",
        "Retries of events after a transient error, by error kind",
        ["kind"],
        registry=None,
    ),
    ("run",),
)
FRAMES_ANONYMIZED = _exported(
    Counter("anonymizer_frames_anonymized", "Frames anonymized by this process (stream, API or CLI)", registry=None),
    _FRAMES,
)
REGIONS_HIDDEN = _exported(
    Counter("anonymizer_regions_hidden", "Regions hidden, by label", ["label"], registry=None), _FRAMES
)
STAGE_SECONDS = _exported(
    Histogram(
        "anonymizer_stage_duration_seconds",
        "Time per stage of one frame's path",
        ["stage"],
        buckets=_LATENCY_BUCKETS_S,
        registry=None,
    ),
    _FRAMES,
)
FRAMES_IN_FLIGHT = _exported(Gauge("anonymizer_frames_in_flight", "Frames being processed now", registry=None), _FRAMES)
PIXELS_HELD = _exported(
    Gauge("anonymizer_decoded_pixels_held", "Pixels of the frames decoded or being decoded now", registry=None), _FRAMES
)
PIXEL_BUDGET_WAITS = _exported(
    Counter(
        "anonymizer_pixel_budget_waits",
        "Frames that waited for the decoded-pixel budget (limits.max_pixels_in_flight)",
        registry=None,
    ),
    _FRAMES,
)
PAUSED_PARTITIONS = _exported(
    Gauge("anonymizer_paused_partitions", "Assigned partitions paused by backpressure", registry=None), ("run",)
)
CONSUMER_LAG = _exported(
    Gauge(
        "anonymizer_consumer_lag",
        "Records behind the partition's high watermark",
        ["topic", "partition"],
        registry=None,
    ),
    ("run",),
)
INFERENCE_SECONDS = _exported(
    Histogram(
        "anonymizer_inference_duration_seconds",
        "Time to localize one sensitive_info entry, by inference URL (retries included)",
        ["url"],
        buckets=_LATENCY_BUCKETS_S,
        registry=None,
    ),
    _FRAMES,
)
INFERENCE_ERRORS = _exported(
    Counter(
        "anonymizer_inference_errors",
        "Failed localizations, by inference URL and error kind",
        ["url", "kind"],
        registry=None,
    ),
    _FRAMES,
)
HTTP_REQUESTS = _exported(
    Counter(
        "anonymizer_http_requests",
        "HTTP requests answered, by route, method and status",
        ["route", "method", "status"],
        registry=None,
    ),
    _ALL,
)
HTTP_IN_FLIGHT = _exported(
    Gauge("anonymizer_http_requests_in_flight", "HTTP requests being answered now", registry=None), _ALL
)
HTTP_SECONDS = _exported(
    Histogram(
        "anonymizer_http_request_duration_seconds",
        "Time to answer an HTTP request, by route",
        ["route"],
        buckets=_LATENCY_BUCKETS_S,
        registry=None,
    ),
    _ALL,
)


def record_consumed(count: int = 1) -> None:
    """``count`` events taken from the source (call once per parsed record with its number of events)."""
    EVENTS_CONSUMED.inc(count)


def record_completed() -> None:
    """One event done: its completion event was published."""
    EVENTS_COMPLETED.inc()


def record_dead_lettered(kind: str) -> None:
    """One event (or unparsable record) dead-lettered with error ``kind`` (``ProcessorError.kind`` or internal)."""
    EVENTS_DEAD_LETTERED.labels(kind=kind).inc()


def record_retried(kind: str) -> None:
    """One retry scheduled after a transient error of ``kind``."""
    EVENTS_RETRIED.labels(kind=kind).inc()


def observe_frame(result: FrameResult) -> None:
    """One frame anonymized: its stage timings, and the regions hidden per label."""
    FRAMES_ANONYMIZED.inc()
    for stage, milliseconds in result.timings_ms.items():
        if stage in STAGES:
            STAGE_SECONDS.labels(stage=stage).observe(milliseconds / 1000.0)
    for label, count in result.counts.items():
        REGIONS_HIDDEN.labels(label=label).inc(count)


@contextmanager
def frame_in_flight() -> Iterator[None]:
    """Count a frame as in flight for the duration of the ``with`` block."""
    FRAMES_IN_FLIGHT.inc()
    try:
        yield
    finally:
        FRAMES_IN_FLIGHT.dec()


def set_paused_partitions(count: int) -> None:
    PAUSED_PARTITIONS.set(count)


def set_consumer_lag(topic: str, partition: int, lag: int) -> None:
    """Records between the consumer's position and the partition's high watermark."""
    CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(max(lag, 0))


def forget_partition(topic: str, partition: int) -> None:
    """Drop the lag of a partition this consumer no longer owns (after a revoke)."""
    with suppress(KeyError):
        CONSUMER_LAG.remove(topic, str(partition))


def observe_inference(url: str, seconds: float) -> None:
    INFERENCE_SECONDS.labels(url=url_label(url)).observe(seconds)


def record_inference_error(url: str, kind: str) -> None:
    INFERENCE_ERRORS.labels(url=url_label(url), kind=kind).inc()


def url_label(url: str) -> str:
    """The URL as a label shows it: never its user name or password (``http://user:secret@host/`` →
    ``http://host/``), whatever the caller passed; the query is dropped too (registered URLs have none)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None and not parts.query:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@contextmanager
def http_in_flight() -> Iterator[None]:
    """Count an HTTP request as being answered for the duration of the ``with`` block."""
    HTTP_IN_FLIGHT.inc()
    try:
        yield
    finally:
        HTTP_IN_FLIGHT.dec()


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
    HTTP_SECONDS.labels(route=route).observe(seconds)


def render(role: Role = "run") -> tuple[bytes, str]:
    """The role's registry in the Prometheus text format, and its content type."""
    return generate_latest(_REGISTRIES[role]), CONTENT_TYPE_LATEST

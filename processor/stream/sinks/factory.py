"""Which sink a run publishes to: Kafka topics when ``kafka.bootstrap_servers`` is set, else JSON-lines files."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from processor.settings import Settings
from processor.stream.sinks.base import Sink
from processor.stream.sinks.jsonl import JsonlSink
from processor.stream.sinks.kafka import KafkaSink


def open_sink(settings: Settings) -> AbstractAsyncContextManager[Sink]:
    """The configured sink, to enter (it connects or opens its files on enter, flushes on exit)."""
    if settings.kafka.bootstrap_servers is not None:
        return KafkaSink(settings.kafka)
    return JsonlSink(settings.stream.completions_file)

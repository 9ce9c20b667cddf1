"""Which source a run reads from: SQS when ``sqs.queue_url`` is set, Kafka when ``kafka.bootstrap_servers`` is,
else the local inbox."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from processor.settings import Settings
from processor.stream.sources.base import Source
from processor.stream.sources.inbox import InboxSource
from processor.stream.sources.kafka import KafkaSource
from processor.stream.sources.sqs import SqsSource


def open_source(settings: Settings, skip: Callable[[str], bool]) -> AbstractAsyncContextManager[Source]:
    """The configured source, to enter (it connects or lists on enter).

    :param skip: object URLs a listing source leaves out (the processor's own outputs).
    """
    if settings.sqs.queue_url is not None:
        return SqsSource(settings.sqs)
    if settings.kafka.bootstrap_servers is not None:
        return KafkaSource(settings.kafka)
    return InboxSource(settings.stream, skip)

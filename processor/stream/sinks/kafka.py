"""Completion events and dead letters on Kafka topics, through one producer.

A publish returns only once the broker acknowledged it (``acks=all``), because the caller marks the event done
right after. Failures to publish raise :class:`BrokerUnavailable` (transient: the caller retries without redoing
the frame).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from processor.errors import BrokerUnavailable
from processor.settings import KafkaSettings
from processor.stream.kafka import connection_options
from schemas.events import CompletionEvent, DeadLetter

log = logging.getLogger(__name__)

_MAX_REQUEST_BYTES = 1_048_576  # aiokafka's default max_request_size, and most brokers' message.max.bytes
_TRUNCATION_NOTE = " [payload dropped: the dead letter would exceed the broker's message size limit]"


class KafkaSink:
    """Completion and dead-letter topics through one producer; an async context manager (flushes on exit).

    The producer is not idempotent (some Kafka-protocol brokers lack InitProducerId): a retried publish can
    duplicate a completion event, which at-least-once delivery allows anyway.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Self:
        producer = AIOKafkaProducer(
            **connection_options(self._settings),
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            max_request_size=_MAX_REQUEST_BYTES,
        )
        try:
            await producer.start()
        except BaseException as error:
            await producer.stop()  # closes what start() opened before failing
            if isinstance(error, KafkaError):
                raise BrokerUnavailable(f"cannot reach {self._settings.bootstrap_servers}: {error}") from error
            raise
        self._producer = producer
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()  # flushes what is pending

    async def completed(self, event: CompletionEvent) -> None:
        await self._send(self._settings.completion_topic, event.model_dump_json().encode(), event.source.encode())

    async def dead_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        value = letter.model_dump_json().encode()
        if len(value) > _MAX_REQUEST_BYTES - 4096:  # room for the key and the record framing
            value = _without_payload(letter).model_dump_json().encode()
        await self._send(self._settings.dead_letter_topic, value, key)

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()

    async def _send(self, topic: str, value: bytes, key: bytes | None) -> None:
        if self._producer is None:
            raise RuntimeError("KafkaSink used outside 'async with'")
        try:
            await self._producer.send_and_wait(topic, value, key=key)
        except MessageSizeTooLargeError:
            raise  # a bug of ours, not the broker's state: retrying cannot help
        except KafkaError as error:
            raise BrokerUnavailable(f"cannot publish to {topic}: {error!r}") from error


def _without_payload(letter: DeadLetter) -> DeadLetter:
    log.warning(
        "dead letter for %s:%d@%d too large; payload dropped",
        letter.source_topic,
        letter.source_partition,
        letter.source_offset,
    )
    return letter.model_copy(update={"payload_base64": None, "error_message": letter.error_message + _TRUNCATION_NOTE})

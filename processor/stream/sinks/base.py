"""What every sink answers: publish a completion event or a dead letter durably, flush.

A publish returns only once the result is durable (acknowledged by a broker, or written and flushed), because the
caller marks the event done right after. Failures to publish raise :class:`BrokerUnavailable` (transient: the
caller retries without redoing the frame).
"""

from __future__ import annotations

from typing import Protocol

from schemas.events import CompletionEvent, DeadLetter


class Sink(Protocol):
    async def completed(self, event: CompletionEvent) -> None:
        """Publish a completion event, keyed by its source URL. Raises BrokerUnavailable."""
        ...

    async def dead_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        """Publish a dead letter, keyed like the original message. Raises BrokerUnavailable."""
        ...

    async def flush(self) -> None:
        """Make everything published so far durable."""
        ...

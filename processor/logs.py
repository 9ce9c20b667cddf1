"""Logging set-up: plain text for people, or one JSON object per line for log collectors (``log_format``).

A JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, then the context fields bound
with :func:`log_context` (e.g. ``event_id`` for everything logged while one event is processed, including by
the tasks it starts), then the ``extra={...}`` fields of the call, and ``exception`` with the traceback if any.

The Kafka client's own lines are rate-limited (:class:`RepeatLimit`): a broker gone for good makes aiokafka log
about 68 lines a second (measured), for as long as it stays gone.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# C0 and C1 control characters (and DEL) as visible escapes: a newline or an ANSI escape in an event id or an
# object key must not forge a log line or repaint a terminal.
_ESCAPES = {code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0))}

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every JSON line logged in this context (this task and the tasks it creates meanwhile)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(_context.get() or {})
        document.update((key, value) for key, value in vars(record).items() if key not in _STANDARD)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, one line per record: control characters in the message are escaped (``\\n``,
    ``\\x1b``); a traceback still follows on its own lines."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_ESCAPES)


class RepeatLimit(logging.Filter):
    """Lets through at most one record per ``interval_s`` for each (logger, message template) of the loggers
    under ``prefix``; the next one let through says how many were suppressed (``suppressed`` in JSON). Records of
    other loggers always pass. At most :attr:`MAX_KEYS` templates are remembered (lines formatted before logging
    each have their own), the stale ones dropped first."""

    MAX_KEYS = 256

    def __init__(self, prefix: str, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._prefix = prefix
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[tuple[str, object], float] = {}
        self._suppressed: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != self._prefix and not record.name.startswith(self._prefix + "."):
            return True
        key, now = (record.name, record.msg), self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if len(self._last) >= self.MAX_KEYS:
            self._forget_before(now - self._interval_s)
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed and last is not None:
            record.msg = f"{record.msg} ({suppressed} more like this in the last {now - last:.0f} s)"
            record.suppressed = suppressed
        return True

    def _forget_before(self, moment: float) -> None:
        """Drop the templates last let through before ``moment`` (their suppressed counts are lost); if every one
        is recent, all of them."""
        stale = [key for key, last in self._last.items() if last < moment] or list(self._last)
        for key in stale:
            del self._last[key]
            self._suppressed.pop(key, None)


KAFKA_REPEAT_INTERVAL_S = 30.0
"""The Kafka client logs each kind of line at most once per this many seconds."""


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one writing ``log_format`` to ``stream`` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RepeatLimit("aiokafka", KAFKA_REPEAT_INTERVAL_S))
    root = logging.getLogger()
    for previous in root.handlers[:]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())

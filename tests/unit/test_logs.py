"""JSON log lines: one object per line with level, logger, message, context fields and extras."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from processor.logs import RepeatLimit, configure_logging, log_context


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The root logger writing JSON to a buffer; the previous handlers and level are restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("info", "json", buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_record_is_one_json_object_with_level_logger_message_and_extras(stream: io.StringIO) -> None:
    logging.getLogger("processor.test").warning("frame %s: %d faces", "a.jpg", 3, extra={"event_id": "e-1"})
    logging.getLogger("processor.test").debug("below the level")
    (line,) = lines(stream)
    assert line["level"] == "WARNING" and line["logger"] == "processor.test"
    assert line["message"] == "frame a.jpg: 3 faces" and line["event_id"] == "e-1"
    assert str(line["time"]).endswith("+00:00")


def test_context_fields_reach_every_line_of_the_task_and_its_subtasks(stream: io.StringIO) -> None:
    log = logging.getLogger("processor.test")

    async def process(event_id: str) -> None:
        with log_context(event_id=event_id):
            log.info("started")
            await asyncio.gather(asyncio.create_task(asyncio.sleep(0, log.info("in a subtask"))))
        log.info("after")

    async def both() -> None:
        await asyncio.gather(process("e-1"), process("e-2"))

    asyncio.run(both())
    by_message: dict[str, list[object]] = {}
    for line in lines(stream):
        by_message.setdefault(str(line["message"]), []).append(line.get("event_id"))
    assert sorted(map(str, by_message["started"])) == ["e-1", "e-2"]
    assert sorted(map(str, by_message["in a subtask"])) == ["e-1", "e-2"]
    assert by_message["after"] == [None, None]


def test_exceptions_are_one_field_and_odd_extras_are_text(stream: io.StringIO) -> None:
    try:
        raise ValueError("broken frame")
    except ValueError:
        logging.getLogger("processor.test").exception("failed", extra={"path": io.StringIO})
    (line,) = lines(stream)
    assert "ValueError: broken frame" in str(line["exception"]) and "\n" not in stream.getvalue().rstrip("\n")
    assert "StringIO" in str(line["path"])


def test_text_format_stays_plain() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    try:
        configure_logging("INFO", "text", buffer)
        logging.getLogger("processor.test").info("hello")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert buffer.getvalue().rstrip().endswith("INFO processor.test: hello")


def test_text_lines_escape_control_characters_so_no_line_can_be_forged() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    try:
        configure_logging("INFO", "text", buffer)
        forged = "e-1\n2026-01-01 00:00:00 ERROR processor.stream: forged\x1b[2J"
        logging.getLogger("processor.test").info("event %s done", forged)
        try:
            raise ValueError("broken")
        except ValueError:
            logging.getLogger("processor.test").exception("failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    output = buffer.getvalue().splitlines()
    assert output[0].endswith(
        "INFO processor.test: event e-1\\n2026-01-01 00:00:00 ERROR processor.stream: forged\\x1b[2J done"
    )
    assert "\x1b" not in buffer.getvalue()
    assert output[1].endswith("ERROR processor.test: failed") and output[2] == "Traceback (most recent call last):"


def test_the_kafka_clients_repeated_lines_pass_once_per_interval_then_say_how_many_were_suppressed(
    stream: io.StringIO,
) -> None:
    clock = [100.0]
    limit = RepeatLimit("aiokafka", 30.0, clock=lambda: clock[0])
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is stream]
    assert [type(installed) for installed in handler.filters] == [RepeatLimit]
    handler.filters[:] = [limit]  # the same filter on a clock the test moves
    kafka, ours = logging.getLogger("aiokafka.consumer.fetcher"), logging.getLogger("aiokafka_like.ours")
    for node in range(50):  # one template, changing arguments: one kind of line
        kafka.error("Unable connect to node with id %s: refused", node)
        kafka.error("Failed fetch messages from %s", node)
        ours.error("not the Kafka client %s", node)
        clock[0] += 0.5
    clock[0] += 10  # 35 s after the first lines
    kafka.error("Unable connect to node with id %s: refused", 7)
    logged = lines(stream)
    assert [line["message"] for line in logged if line["logger"] != "aiokafka_like.ours"] == [
        "Unable connect to node with id 0: refused",
        "Failed fetch messages from 0",
        "Unable connect to node with id 7: refused (49 more like this in the last 35 s)",
    ]
    assert logged[-1]["suppressed"] == 49
    assert sum(line["logger"] == "aiokafka_like.ours" for line in logged) == 50


def test_the_repeat_limit_remembers_a_bounded_number_of_templates() -> None:
    clock = [0.0]
    limit = RepeatLimit("aiokafka", 30.0, clock=lambda: clock[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, "", 0, message, None, None)

    assert all(limit.filter(record(f"preformatted line {n}")) for n in range(10 * RepeatLimit.MAX_KEYS))
    assert len(limit._last) <= RepeatLimit.MAX_KEYS
    clock[0] += 1
    assert not limit.filter(record(f"preformatted line {10 * RepeatLimit.MAX_KEYS - 1}"))

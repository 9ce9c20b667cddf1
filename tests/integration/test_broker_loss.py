"""A broker gone for good: the processor stays up (``/health``), says it is not ready (``/ready`` 503), and the Kafka
client's reconnect errors come at a bounded rate."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp

from processor.logs import KAFKA_REPEAT_INTERVAL_S
from processor.settings import StorageSettings
from tests.integration.kafka_helpers import CONSUMER_TUNING, Broker, new_group_id
from tests.integration.servers import kafka_ready, start_server, tansu_argv
from tests.integration.stream_support import ProcessorProcess, new_topics, processor_settings, stop_all, wait_until

_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+): ")
OUTAGE_S = 10.0


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


def records(log: str) -> list[re.Match[str]]:
    """The log's records (a traceback's lines belong to the record before them)."""
    return [match for line in log.splitlines() if (match := _RECORD.match(line))]


async def test_a_broker_gone_for_good_makes_the_processor_unready_and_its_errors_come_once_per_interval(
    tmp_path: Path,
) -> None:
    # A private broker: the session's brokers must outlive this test.
    server = start_server("tansu-lost", tansu_argv, kafka_ready, tmp_path)
    broker = Broker("tansu", server.address, CONSUMER_TUNING["tansu"])
    try:
        topics = await new_topics(broker)
        (tmp_path / "frames").mkdir()
        settings = processor_settings(
            broker, StorageSettings(file_root=tmp_path / "frames"), tmp_path, topics=topics, group_id=new_group_id()
        )
        processor = await ProcessorProcess(settings, tmp_path, "processor").start()
    except BaseException:
        server.stop()
        raise
    try:
        await wait_until(lambda: "assigned 3 partition(s)" in processor.log(), 30, "the partitions assigned")
        address = processor.health_url()
        assert address is not None
        status, ready = await get(address + "ready")
        assert status == 200 and ready["data"]["stream"]["reachable"] is True, ready
        before = len(records(processor.log()))
        server.stop()
        await asyncio.sleep(OUTAGE_S)
        assert processor.process is not None and processor.process.returncode is None, "the processor stays up"
        assert (await get(address + "health"))[0] == 200
        status, ready = await get(address + "ready")
        assert status == 503 and ready["data"]["stream"]["reachable"] is False, ready
        during = records(processor.log())[before:]
        kafka = [match for match in during if match["logger"].startswith("aiokafka")]
        kinds = {match.string[match.end() :][:40] for match in kafka}
        # Measured without the limit: 679 records in these 10 s (about 68 a second), for as long as it lasts.
        assert kafka, "the outage is logged"
        assert OUTAGE_S < KAFKA_REPEAT_INTERVAL_S and len(kafka) <= 12, (len(kafka), sorted(kinds))
    finally:
        await stop_all([processor])
        server.stop()

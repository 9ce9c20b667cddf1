"""The health and metrics app that ``anonymizer run`` serves, over real HTTP, with a readiness the owner controls."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from processor import metrics
from processor.health import create_health_app, serve_health
from processor.settings import HttpSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def test_ready_follows_the_owners_callable_and_metrics_show_the_stream_counters() -> None:
    state: dict[str, Any] = {"ready": False, "consumer": "not assigned"}

    async def ready() -> tuple[bool, dict[str, Any]]:
        return state["ready"], {"consumer": state["consumer"]}

    async with TestClient(TestServer(create_health_app(ready), host="127.0.0.1")) as client:
        response = await client.get("/health")
        assert response.status == 200 and (await response.json())["data"]["alive"] is True

        response = await client.get("/ready")
        assert response.status == 503
        answer = await response.json()
        assert answer["success"] is False and answer["data"] == {"ready": False, "consumer": "not assigned"}

        state.update(ready=True, consumer="assigned: frames[0, 1, 2]")
        response = await client.get("/ready")
        assert response.status == 200
        assert (await response.json())["data"] == {"ready": True, "consumer": "assigned: frames[0, 1, 2]"}

        metrics.record_consumed(3)
        metrics.record_dead_lettered("image_undecodable")
        metrics.set_consumer_lag("frames", 2, 17)
        metrics.set_paused_partitions(2)
        text = await (await client.get("/metrics")).text()
        values = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        assert values[("anonymizer_events_consumed_total", ())] >= 3
        assert values[("anonymizer_events_dead_lettered_total", (("kind", "image_undecodable"),))] >= 1
        assert values[("anonymizer_consumer_lag", (("partition", "2"), ("topic", "frames")))] == 17
        assert values[("anonymizer_paused_partitions", ())] == 2
        assert (
            values[("anonymizer_http_requests_total", (("method", "GET"), ("route", "/ready"), ("status", "503")))] >= 1
        )

        metrics.forget_partition("frames", 2)
        metrics.set_paused_partitions(0)
        text = await (await client.get("/metrics")).text()
        assert 'anonymizer_consumer_lag{partition="2",topic="frames"}' not in text


async def test_serve_health_listens_until_the_block_exits() -> None:
    async def ready() -> tuple[bool, dict[str, Any]]:
        return True, {"storage": "reachable"}

    async with (
        serve_health(HttpSettings(host="127.0.0.1", port=0), ready) as (host, port),
        aiohttp.ClientSession() as session,
        session.get(f"http://{host}:{port}/ready") as response,
    ):
        assert response.status == 200 and (await response.json())["data"]["storage"] == "reachable"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://{host}:{port}/health")

"""The URL registry against stub services over real sockets: file updates, reachability, refresh, start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from processor.errors import InferenceUnavailable, InvalidConfiguration
from processor.inference.http import InferenceClient
from processor.inference.registry import UrlRegistry, read_urls
from processor.inference.router import InferenceRouter
from processor.settings import InferenceSettings
from schemas.config import InferenceType, SensitiveInfo
from tests.conftest import LOOPBACK
from tests.inference_stubs import InferenceStub, StubModel, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

FACES = StubModel("yolo_faces", "detection", ["face"], boxes=[])
PERSONS = StubModel("deeplab", "segmentation", ["background", "person"])


def registry_settings(path: Path, **overrides: float) -> InferenceSettings:
    values: dict[str, object] = {
        "url_configuration": path,
        "timeout_s": 1.0,
        "max_attempts": 2,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.02,
        "refresh_interval_s": 60.0,
        "probe_interval_s": 0.1,
        "allowed_networks": LOOPBACK,
    }
    values.update(overrides)
    return InferenceSettings.model_validate(values)


@pytest.fixture
def settings(tmp_path: Path) -> InferenceSettings:
    return registry_settings(tmp_path / "jsonFiles" / "url_configuration.json")


@pytest.fixture
async def client(settings: InferenceSettings) -> AsyncIterator[InferenceClient]:
    async with InferenceClient(settings) as opened:
        yield opened


def file_urls(settings: InferenceSettings) -> list[str]:
    urls: list[str] = orjson.loads(settings.url_configuration.read_bytes())["urls"]
    return urls


async def test_missing_file_means_the_builtin_default(settings: InferenceSettings, client: InferenceClient) -> None:
    async with UrlRegistry(settings, client) as registry:
        assert registry.urls == ("builtin",)
        assert registry.capabilities.by_label()["face"] == {"detection": {"builtin": ["centerface"]}}
        assert "blurring" in registry.capabilities.techniques
    assert not settings.url_configuration.exists()  # reading never writes


async def test_add_normalises_checks_and_discovers(settings: InferenceSettings, client: InferenceClient) -> None:
    async with InferenceStub([FACES, PERSONS]) as stub, UrlRegistry(settings, client) as registry:
        await registry.remove_all()
        without_slash = stub.url.rstrip("/").replace("http://", "HTTP://")
        assert await registry.add(without_slash) == stub.url
        assert await registry.add(stub.url) == stub.url  # already there: unchanged
        assert file_urls(settings) == [stub.url]
        assert registry.capabilities.by_label() == {
            "face": {"detection": {stub.url: ["yolo_faces"]}},
            "background": {"segmentation": {stub.url: ["deeplab"]}},
            "person": {"segmentation": {stub.url: ["deeplab"]}},
        }


async def test_add_refuses_an_unreachable_url_with_a_clear_error(
    settings: InferenceSettings, client: InferenceClient
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    async with UrlRegistry(settings, client) as registry:
        with pytest.raises(InferenceUnavailable, match=rf"cannot register {url}: it does not answer .*models"):
            await registry.add(url)
        with pytest.raises(InvalidConfiguration, match="neither 'builtin' nor an http"):
            await registry.add("ftp://example.org/")
        assert registry.urls == ("builtin",)
    assert not settings.url_configuration.exists()


async def test_concurrent_adds_from_two_registries_lose_nothing(
    settings: InferenceSettings, client: InferenceClient
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        stubs = [await stack.enter_async_context(InferenceStub([FACES])) for _ in range(8)]
        first = await stack.enter_async_context(UrlRegistry(settings, client))
        second = await stack.enter_async_context(UrlRegistry(settings, client))
        await asyncio.gather(
            *(registry.add(stub.url) for registry, stub in zip([first, second] * 4, stubs, strict=True))
        )
        expected = {"builtin", *(stub.url for stub in stubs)}
        assert set(file_urls(settings)) == expected
        assert len(file_urls(settings)) == len(expected)
        assert set((await first.refresh()).urls) == expected


async def test_updates_are_atomic_for_readers(settings: InferenceSettings, client: InferenceClient) -> None:
    async with UrlRegistry(settings, client) as registry:
        await registry.add("builtin")
        stop = threading.Event()
        bad: list[BaseException] = []

        def read_continuously() -> None:
            while not stop.is_set():
                try:
                    read_urls(settings.url_configuration)
                except (InvalidConfiguration, OSError) as error:
                    bad.append(error)

        reader = threading.Thread(target=read_continuously)
        reader.start()
        try:
            for _ in range(40):
                await registry.remove("builtin")
                await registry.add("builtin")
        finally:
            stop.set()
            reader.join()
    assert bad == []
    leftovers = sorted(path.name for path in settings.url_configuration.parent.iterdir())
    assert leftovers == ["url_configuration.json", "url_configuration.json.lock"]  # no temporary file left


async def test_remove_and_remove_all(settings: InferenceSettings, client: InferenceClient) -> None:
    async with InferenceStub([FACES]) as stub, UrlRegistry(settings, client) as registry:
        await registry.add(stub.url)
        assert registry.urls == ("builtin", stub.url)
        assert await registry.remove(stub.url.rstrip("/")) is True
        assert await registry.remove(stub.url) is False
        assert file_urls(settings) == ["builtin"]
        await registry.add(stub.url)
        await registry.remove_all()
        assert file_urls(settings) == []
        assert len(registry.urls) == 0
        assert registry.capabilities.by_label() == {}


async def test_invalid_file_is_a_configuration_error(settings: InferenceSettings, client: InferenceClient) -> None:
    settings.url_configuration.parent.mkdir(parents=True)
    settings.url_configuration.write_text('{"urls": "http://not-a-list/"}')
    with pytest.raises(InvalidConfiguration, match="not a valid URL configuration"):
        async with UrlRegistry(settings, client):
            pass


async def test_start_up_with_an_unreachable_url_reports_it_and_uses_it_once_it_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    settings = registry_settings(tmp_path / "url_configuration.json", refresh_interval_s=0.2, probe_interval_s=0.1)
    settings.url_configuration.write_text(orjson.dumps({"urls": [url]}).decode())
    entry = SensitiveInfo(
        model_name="yolo_faces",
        class_name="face",
        anonymization_technique="blurring",
        inference_type=InferenceType.detection,
        anonymization_degree=1.0,
    )
    caplog.set_level(logging.WARNING, logger="processor.inference.registry")
    async with InferenceClient(settings) as client, UrlRegistry(settings, client) as registry:
        router = InferenceRouter(registry, client)
        service = registry.capabilities.services[0]
        assert (service.url, service.models) == (url, None)
        assert service.error is not None and "ClientConnectorError" in service.error
        assert any(url in record.getMessage() and "will retry" in record.getMessage() for record in caplog.records)
        assert registry.capabilities.as_json()["urls"] == {url: {"reachable": False, "error": service.error}}
        with pytest.raises(InferenceUnavailable, match="no reachable service serves it yet"):
            router.route(entry)  # transient: the event is retried, not dead-lettered
        async with InferenceStub([FACES], port=port):
            for _ in range(50):
                if registry.capabilities.services[0].models:
                    break
                await asyncio.sleep(0.05)
            assert router.route(entry).url == url


async def test_a_silent_url_delays_start_up_by_at_most_the_connect_timeout(tmp_path: Path) -> None:
    settings = registry_settings(tmp_path / "url_configuration.json", connect_timeout_s=0.3, timeout_s=3.0)
    async with InferenceStub([FACES], slow_s=5.0) as stub, InferenceClient(settings) as client:
        settings.url_configuration.write_text(orjson.dumps({"urls": [stub.url, "builtin"]}).decode())
        stub.fail_next("slow")  # GET models hangs past the start-up bound
        started = asyncio.get_running_loop().time()
        async with UrlRegistry(settings, client) as registry:
            elapsed = asyncio.get_running_loop().time() - started
            assert registry.urls == (stub.url, "builtin")
            assert registry.capabilities.services[0].models is None  # still being discovered
            assert registry.capabilities.by_label()["face"]["detection"] == {"builtin": ["centerface"]}
    assert 0.3 <= elapsed < 1.0

"""The outbound policy over real sockets: a canary HTTP server on loopback that neither the inference client nor
``/set_url`` may reach (directly, by name, or through a redirect), and answers whose bodies are never echoed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from processor.api.app import create_app
from processor.errors import InferenceRejected, InferenceUnavailable, OutboundRefused
from processor.inference.http import InferenceClient
from processor.settings import InferenceSettings, Settings

CANARY_TEXT = "canary-secret-4f1c"


@dataclass
class Canary:
    """An internal service: counts every request it gets and answers with a secret."""

    url: str = ""
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    found = Canary()

    async def secret(request: web.Request) -> web.Response:
        found.hits.append(request.path)
        return web.Response(text=f'{{"data": ["{CANARY_TEXT}"], "success": true}}', content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", secret)
    async with TestServer(app, host="127.0.0.1") as server:
        found.url = str(server.make_url("/"))
        yield found


@pytest.fixture
async def leaky() -> AsyncIterator[str]:
    """An allowed service whose every answer is wrong and carries the secret: as a redirect, a 500 or HTML."""

    async def answer(request: web.Request) -> web.StreamResponse:
        target = request.query.get("to")
        if request.path.startswith("/redirect/"):
            raise web.HTTPFound(f"{target}models", text=CANARY_TEXT)
        if request.path.startswith("/broken/"):
            return web.Response(status=500, text=f"<html>{CANARY_TEXT}</html>", content_type="text/html")
        return web.Response(text=f"<html>{CANARY_TEXT}</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        yield f"http://localhost:{server.port}/"


async def test_loopback_by_address_or_name_is_never_contacted(canary: Canary) -> None:
    async with InferenceClient(InferenceSettings(max_attempts=1)) as client:
        with pytest.raises(OutboundRefused, match="loopback"):
            await client.models(canary.url)
        with pytest.raises(OutboundRefused, match="loopback"):
            await client.models(canary.url.replace("127.0.0.1", "localhost"))
        with pytest.raises(OutboundRefused, match="metadata"):
            await client.models("http://169.254.169.254/latest/")
    assert canary.hits == []


async def test_redirects_are_not_followed_and_bodies_are_not_echoed(canary: Canary, leaky: str) -> None:
    allowed = InferenceSettings(max_attempts=1, allowed_hosts=("localhost",))
    async with InferenceClient(allowed) as client:
        with pytest.raises(InferenceRejected, match="HTTP 302") as redirected:
            await client.models(f"{leaky}redirect/?to={canary.url}")
        with pytest.raises(InferenceUnavailable, match="HTTP 500") as broken:
            await client.models(f"{leaky}broken/")
        with pytest.raises(InferenceRejected, match="malformed JSON") as html:
            await client.models(leaky)
    assert canary.hits == []
    for error in (redirected, broken, html):
        assert CANARY_TEXT not in str(error.value)


async def test_set_url_cannot_register_or_read_an_internal_service(tmp_path: Path, canary: Canary) -> None:
    registry = tmp_path / "url_configuration.json"
    registry.write_text('{"urls": ["builtin"]}')
    settings = Settings(inference=InferenceSettings(url_configuration=registry, max_attempts=1))
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as api:
        for url in (canary.url, canary.url.replace("127.0.0.1", "localhost"), "http://metadata.google.internal/"):
            response = await api.post("/set_url", data={"url": url})
            body = await response.text()
            assert response.status == 403, body
            assert response.headers["X-Anonymizer-Error-Kind"] == "outbound_refused"
            assert orjson.loads(body)["error"] == "url trying to add is not allowed by the outbound policy"
            assert CANARY_TEXT not in body
        listed = await (await api.get("/list_urls")).json()
    assert listed["data"]["urls"] == ["builtin"]
    assert canary.hits == []

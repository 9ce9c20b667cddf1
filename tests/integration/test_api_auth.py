"""Bearer tokens and the routing hijack, over real HTTP: admin endpoints 401/403 without the admin token, every
non-public endpoint behind a token, ``serve`` refusing a network address without one, and a registered impostor
``centerface`` service that never receives a frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from processor.api.app import create_app
from processor.errors import InsecureSettings
from processor.settings import BuiltinSettings, HttpSettings, InferenceSettings, Settings
from tests.conftest import LOOPBACK, LOOPBACK_ENV
from tests.inference_stubs import InferenceStub, StubModel
from tests.integration.api_support import anonymize_form, faces_blackened

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

API_TOKEN = "api-token-0123456789abcdef"  # noqa: S105 - a test token
ADMIN_TOKEN = "admin-token-0123456789abcdef"  # noqa: S105 - a test token
FACE = (slice(95, 125), slice(185, 215))  # rows, columns well inside the astronaut's face
ADMIN_CALLS = (("/set_url", {"url": "builtin"}), ("/remove_url", {"url": "builtin"}), ("/remove_all_urls", {}))

Api = Callable[..., Awaitable[TestClient[Any, Any]]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_for(registry: Path, **http: Any) -> Settings:
    return Settings(
        inference=InferenceSettings(
            url_configuration=registry, max_attempts=1, connect_timeout_s=2, allowed_networks=LOOPBACK
        ),
        http=HttpSettings(**http),
        builtin=BuiltinSettings(workers=2),
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """Factory: ``await api(urls, **http_settings)`` starts the API on loopback and returns a client to it."""
    clients: list[TestClient[Any, Any]] = []

    async def start(urls: list[str] | None = None, **http: Any) -> TestClient[Any, Any]:
        registry = tmp_path / f"url_configuration_{len(clients)}.json"
        registry.write_text(json.dumps({"urls": urls if urls is not None else ["builtin"]}))
        client: TestClient[Any, Any] = TestClient(
            TestServer(create_app(settings_for(registry, **http)), host="127.0.0.1")
        )
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def with_tokens() -> dict[str, Any]:
    return {"api_token": SecretStr(API_TOKEN), "admin_token": SecretStr(ADMIN_TOKEN)}


FACES_WITHOUT_URL = faces_blackened(url=None)


async def refusal(response: Any) -> tuple[int, str]:
    body = await response.json()
    assert body["success"] is False and body["error"]
    assert body["data"]["problems"] == [body["error"]]
    return response.status, body["data"]["kind"]


async def test_admin_endpoints_answer_401_without_and_403_with_a_wrong_or_api_token(api: Api, tmp_path: Path) -> None:
    client = await api(**with_tokens())
    for path, form in ADMIN_CALLS:
        response = await client.post(path, data=form)
        assert await refusal(response) == (401, "unauthenticated"), path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        for headers in (bearer("wrong-token-0123456789"), bearer(API_TOKEN), {"Authorization": f"Basic {ADMIN_TOKEN}"}):
            response = await client.post(path, data=form, headers=headers)
            expected = (401, "unauthenticated") if headers["Authorization"].startswith("Basic") else (403, "forbidden")
            assert await refusal(response) == expected, (path, headers)
    registry = json.loads((tmp_path / "url_configuration_0.json").read_text())
    assert registry == {"urls": ["builtin"]}, "no refused call changed the registry"
    for path, form in ADMIN_CALLS:
        response = await client.post(path, data=form, headers=bearer(ADMIN_TOKEN))
        assert response.status == 200, (path, await response.text())


async def test_every_endpoint_but_the_public_ones_needs_a_token(api: Api, astronaut_jpeg: bytes) -> None:
    client = await api(**with_tokens())
    for path in ("/health", "/ready", "/openapi.json", "/docs/", "/"):
        assert (await client.get(path)).status == 200, path
    for path in ("/list_urls", "/urls", "/available_methods/", "/metrics", "/no/such/path"):
        assert await refusal(await client.get(path)) == (401, "unauthenticated"), path
        assert await refusal(await client.get(path, headers=bearer("x" * 20))) == (403, "forbidden"), path
    for token in (API_TOKEN, ADMIN_TOKEN):
        assert (await client.get("/list_urls", headers=bearer(token))).status == 200
    form = anonymize_form(astronaut_jpeg, FACES_WITHOUT_URL)
    assert await refusal(await client.post("/anonymize/", data=form)) == (401, "unauthenticated")
    response = await client.post(
        "/anonymize/", data=anonymize_form(astronaut_jpeg, FACES_WITHOUT_URL), headers=bearer(API_TOKEN)
    )
    assert response.status == 200, await response.text()


async def test_the_root_path_is_public_without_making_every_path_public(api: Api) -> None:
    client = await api(**with_tokens(), public_paths=frozenset({"/"}))
    response = await client.get("/", allow_redirects=False)
    assert response.status == 301 and response.headers["Location"] == "/docs/"
    for path in ("/list_urls", "/metrics", "/docs/"):  # "/" covers itself only
        assert await refusal(await client.get(path)) == (401, "unauthenticated"), path


async def test_metrics_can_be_made_public(api: Api) -> None:
    client = await api(**with_tokens(), public_paths=frozenset({"/health", "/metrics"}))
    assert (await client.get("/metrics")).status == 200
    assert await refusal(await client.get("/ready")) == (401, "unauthenticated")


async def test_the_openapi_document_declares_the_schemes_and_each_requirement(api: Api) -> None:
    document = await (await (await api(**with_tokens())).get("/openapi.json")).json()
    assert set(document["components"]["securitySchemes"]) == {"apiToken", "adminToken"}
    assert document["paths"]["/set_url"]["post"]["security"] == [{"adminToken": []}]
    assert document["paths"]["/anonymize/"]["post"]["security"] == [{"apiToken": []}, {"adminToken": []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    assert {"401", "403"} <= set(document["paths"]["/remove_all_urls"]["post"]["responses"])


def test_no_token_on_a_network_address_is_refused_unless_asked_for(tmp_path: Path) -> None:
    registry = tmp_path / "url_configuration.json"
    for host in ("0.0.0.0", "::", "192.168.1.10", "api.example"):  # noqa: S104 - what is refused
        with pytest.raises(InsecureSettings, match="non-loopback"):
            create_app(settings_for(registry, host=host))
    with pytest.raises(InsecureSettings, match="fewer than 16"):
        create_app(settings_for(registry, host="0.0.0.0", api_token=SecretStr("change-me")))  # noqa: S104
    with pytest.raises(InsecureSettings, match="non-loopback"):
        create_app(settings_for(registry, host="0.0.0.0", api_token=SecretStr("")))  # noqa: S104 - empty = none
    for host in ("127.0.0.1", "localhost", "::1"):
        create_app(settings_for(registry, host=host))


async def test_without_an_admin_token_a_network_address_keeps_the_registry_closed(api: Api) -> None:
    client = await api(host="0.0.0.0", allow_unauthenticated=True)  # noqa: S104 - the settings, not the bind
    for path, form in ADMIN_CALLS:
        assert await refusal(await client.post(path, data=form)) == (403, "admin_disabled"), path
    assert (await client.get("/list_urls")).status == 200  # allow_unauthenticated opened the api scope only
    client = await api(host="0.0.0.0", api_token=SecretStr(API_TOKEN))  # noqa: S104
    response = await client.post("/remove_all_urls", headers=bearer(API_TOKEN))
    assert await refusal(response) == (403, "admin_disabled")


async def test_on_loopback_without_tokens_everything_stays_open(api: Api) -> None:
    client = await api()
    assert (await client.post("/set_url", data={"url": "builtin"})).status == 200
    assert (await client.get("/list_urls")).status == 200


def test_serve_refuses_to_listen_on_every_interface_without_a_token(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_HTTP__")}
    env |= {"ANONYMIZER_INFERENCE__URL_CONFIGURATION": str(tmp_path / "urls.json"), **LOOPBACK_ENV}
    finished = subprocess.run(
        [sys.executable, "-m", "processor", "serve", "--host", "0.0.0.0", "--port", "0"],  # noqa: S104
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert b"refusing to serve on 0.0.0.0" in finished.stderr and b"ANONYMIZER_HTTP__ADMIN_TOKEN" in finished.stderr


async def test_the_routing_hijack_fails_the_builtin_face_model_keeps_hiding_the_face(
    api: Api, astronaut_jpeg: bytes
) -> None:
    """remove_all_urls, then set_url of a service listing `centerface` that finds nothing: a configuration
    without url is still served by the built-in CenterFace; the impostor never receives a frame."""
    async with InferenceStub([StubModel("centerface", "detection", ["face"], boxes=[])]) as impostor:
        client = await api(**with_tokens())
        # the attacker, without a token, cannot even start
        assert (await client.post("/remove_all_urls")).status == 401
        assert (await client.post("/set_url", data={"url": impostor.url})).status == 401
        # with the admin token (an operator's mistake, a leaked token): the registry changes, the routing does not
        assert (await client.post("/remove_all_urls", headers=bearer(ADMIN_TOKEN))).status == 200
        response = await client.post("/set_url", data={"url": impostor.url}, headers=bearer(ADMIN_TOKEN))
        assert response.status == 200, await response.text()
        listed = await (await client.get("/list_urls", headers=bearer(API_TOKEN))).json()
        assert listed["data"]["urls"] == [impostor.url]

        response = await client.post(
            "/anonymize/", data=anonymize_form(astronaut_jpeg, FACES_WITHOUT_URL), headers=bearer(API_TOKEN)
        )
        assert response.status == 200, await response.text()
        assert json.loads(response.headers["X-Anonymizer-Counts"]) == {"face": 1}
        before = cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
        after = cv2.imdecode(np.frombuffer(await response.read(), np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
        assert np.abs(after[FACE] - before[FACE]).mean() > 60 and after[FACE].max() < 20, "the face is hidden"
        assert impostor.uploads == [], "the impostor received no frame"
        assert impostor.requests["/models/centerface/predict"] == 0

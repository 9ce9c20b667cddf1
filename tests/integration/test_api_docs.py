"""``/docs`` and ``/openapi.json`` over real HTTP: a valid OpenAPI 3 document and a Swagger UI with local assets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from processor.api.routes import ENDPOINTS
from tests.integration.api_support import api_on_loopback

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with api_on_loopback(tmp_path, ["builtin"]) as opened:
        yield opened


async def test_openapi_json_is_a_valid_openapi_3_document_of_every_route(client: TestClient[Any, Any]) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)  # raises on any schema or structure error
    assert document["openapi"].startswith("3.")
    for endpoint in ENDPOINTS:
        assert endpoint.method.lower() in document["paths"][endpoint.path], endpoint.path
    for path in ("/health", "/ready", "/metrics"):
        assert "get" in document["paths"][path]
    anonymize = document["paths"]["/anonymize/"]["post"]
    body = anonymize["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["image", "configuration"]
    assert body["properties"]["configuration"]["allOf"] == [{"$ref": "#/components/schemas/UserConfiguration"}]
    assert {"400", "413", "422", "502", "503"} <= set(anonymize["responses"])
    assert "image/jpeg" in anonymize["responses"]["200"]["content"]
    entry = document["components"]["schemas"]["SensitiveInfo"]["properties"]
    assert entry["url"]["nullable"] is True and entry["anonymization_degree"]["maximum"] == 1.0


async def test_openapi_describes_the_original_answers_and_the_registry_states(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/openapi.json")).json()
    schemas, paths = document["components"]["schemas"], document["paths"]

    def success(path: str, method: str = "get") -> dict[str, Any]:
        reference = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        return dict(schemas[reference.rsplit("/", 1)[1]])

    methods = success("/available_methods/")  # not in the envelope: the label index itself
    assert "data" not in methods.get("properties", {}) and "LabelMethods" in str(methods["additionalProperties"])
    added = success("/set_url", "post")["properties"]
    assert added["error"]["enum"] == [""] and added["data"]["$ref"].endswith("/Message")
    assert success("/remove_url", "post")["properties"]["data"]["$ref"].endswith("/Messages")
    assert {"403", "409", "422", "503"} <= set(paths["/set_url"]["post"]["responses"])
    assert "409" in paths["/remove_all_urls"]["post"]["responses"]
    states = schemas["UrlStatus"]["properties"]
    assert {"url", "builtin", "reachable", "error", "models"} <= set(states)
    assert "X-Anonymizer-Error-Kind" in paths["/set_url"]["post"]["responses"]["409"]["headers"]
    assert "headers" not in paths["/set_url"]["post"]["responses"]["200"]


async def test_the_root_path_leads_to_the_docs(client: TestClient[Any, Any]) -> None:
    response = await client.get("/")
    assert response.status == 200 and str(response.url).endswith("/docs/")
    assert "SwaggerUIBundle" in await response.text()


async def test_docs_serve_swagger_ui_and_every_asset_locally(client: TestClient[Any, Any]) -> None:
    response = await client.get("/docs")  # redirected to /docs/
    assert response.status == 200 and response.content_type == "text/html"
    assert str(response.url).endswith("/docs/")
    page = await response.text()
    assert "SwaggerUIBundle" in page and '"../openapi.json"' in page
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(links) >= 3
    for link in links:
        assert "//" not in link, f"{link} is not served by us"  # no CDN, no other host
        asset = await client.get(f"/docs/{link}")
        assert asset.status == 200, link
        body = await asset.read()
        assert body
        if link.endswith(".js"):
            assert "javascript" in asset.content_type and len(body) > 100_000  # the whole UI, not a loader
        if link.endswith(".css"):
            assert asset.content_type == "text/css"

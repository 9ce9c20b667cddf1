"""Helpers of the API's integration tests: the form the original API's clients send, the one-entry configuration
the tests hide faces with, and the API on loopback with a given URL registry."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from processor.api.app import create_app
from processor.settings import InferenceSettings, Settings
from tests.conftest import LOOPBACK


def anonymize_form(image: bytes, configuration: dict[str, Any] | str, *, as_file: bool = True) -> FormData:
    """The form the original API's clients send: the image and the configuration, both as files."""
    form = FormData()
    # A BytesIO, not bytes: aiohttp warns that a large bytes body may block the event loop.
    form.add_field("image", io.BytesIO(image), filename="frame.jpg", content_type="application/octet-stream")
    text = configuration if isinstance(configuration, str) else json.dumps(configuration)
    if as_file:
        form.add_field("configuration", text.encode(), filename="user_configuration.json")
    else:
        form.add_field("configuration", text)
    return form


def faces_blackened(url: str | None = "builtin") -> dict[str, Any]:
    """Faces found by the built-in CenterFace, blackened at degree 1 (routed by model name when ``url`` is None)."""
    entry = {
        "model_name": "centerface",
        "class_name": "face",
        "anonymization_technique": "blackening",
        "inference_type": "detection",
        "anonymization_degree": 1.0,
    }
    return {"sensitive_info": [entry if url is None else entry | {"url": url}]}


@contextlib.asynccontextmanager
async def api_on_loopback(tmp_path: Path, urls: list[str]) -> AsyncIterator[TestClient[Any, Any]]:
    """The API with a registry of ``urls`` in ``tmp_path``, loopback inference allowed, default settings else."""
    registry = tmp_path / "url_configuration.json"
    registry.write_text(json.dumps({"urls": urls}))
    settings = Settings(inference=InferenceSettings(url_configuration=registry, allowed_networks=LOOPBACK))
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as opened:
        yield opened

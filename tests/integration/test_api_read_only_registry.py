"""A real ``anonymizer serve`` whose URL registry cannot be written (a Kubernetes ConfigMap): ``/set_url``,
``/remove_url`` and ``/remove_all_urls`` answer 409 with the original body shape and the documented message, and the
file is left as it was — whether the setting says so or the file system refuses the write."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.inference_stubs import InferenceStub, StubModel
from tests.integration.test_api_compatibility import failed, serve, succeeded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REGISTRY = b'{"urls": ["builtin"]}\n'


def documented(registry: Path, why: str) -> str:
    """The 409 message of docs/api.md ("A read-only registry")."""
    return (
        f"the url registry {registry} {why}; edit the file where it is managed (on Kubernetes: the anonymizer-files "
        "ConfigMap), it is read again within 60 s"
    )


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """``folder`` refuses new files: ``chmod`` for a user; as root, whom permissions do not stop, the immutable
    attribute (``chattr +i``), where the file system has one."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False).returncode:
        pytest.skip("running as root (chmod does not stop root) and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def refused_changes(api: str, detector: str, expected: bytes) -> None:
    """Every change is refused with ``expected`` (a 409 body); reading still works."""
    for path, form in (("set_url", {"url": detector}), ("remove_url", {"url": "builtin"}), ("remove_all_urls", {})):
        response = requests.post(api + path, data=form, timeout=30)
        assert (response.status_code, response.content) == (409, expected), path
        assert response.headers["X-Anonymizer-Error-Kind"] == "registry_read_only"
    response = requests.get(api + "list_urls", timeout=30)
    assert (response.status_code, response.content) == (200, succeeded({"urls": ["builtin"]}))


async def test_the_setting_refuses_every_change_before_contacting_the_url(tmp_path: Path) -> None:
    registry = tmp_path / "url_configuration.json"
    registry.write_bytes(REGISTRY)
    expected = failed(documented(registry, "is read-only in this deployment (inference.url_registry_read_only)"))
    async with InferenceStub([StubModel("faces", "detection", ["face"])]) as stub:
        server = await asyncio.to_thread(serve, registry, tmp_path, ANONYMIZER_INFERENCE__URL_REGISTRY_READ_ONLY="true")
        api = f"http://{server.address}/"
        try:
            await asyncio.to_thread(refused_changes, api, stub.url, expected)
            again = await asyncio.to_thread(requests.post, api + "set_url", data={"url": "builtin"}, timeout=30)
            assert (again.status_code, again.content) == (200, succeeded("url already exist"))  # nothing to write
            listed = (await asyncio.to_thread(requests.get, api + "urls", timeout=30)).json()["data"]
        finally:
            server.stop()
    assert stub.requests == {}  # a refused registration asks the service nothing
    assert listed["read_only"] is True and [url["builtin"] for url in listed["urls"]] == [True]
    assert registry.read_bytes() == REGISTRY
    assert sorted(name for name in os.listdir(tmp_path) if name.startswith(registry.name)) == [registry.name]
    log = server.log_path.read_text()
    assert f"inference URL registry: {registry} (read-only" in log


async def test_a_registry_the_file_system_refuses_to_write_answers_409_and_stays_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "configmap"
    folder.mkdir()
    registry = folder / "url_configuration.json"
    registry.write_bytes(REGISTRY)
    async with InferenceStub([StubModel("faces", "detection", ["face"])]) as stub:
        with unwritable(folder):
            server = await asyncio.to_thread(serve, registry, tmp_path)
            api = f"http://{server.address}/"
            try:
                response = await asyncio.to_thread(requests.post, api + "set_url", data={"url": stub.url}, timeout=30)
                error = response.json()["error"]
                reason = "Operation not permitted" if os.geteuid() == 0 else "Permission denied"
                why = f"cannot be written ({reason}): it is read-only in this deployment"
                expected = failed(documented(registry, why))
                assert (response.status_code, response.content) == (409, expected), error
                await asyncio.to_thread(refused_changes, api, stub.url, expected)
            finally:
                server.stop()
            assert sorted(os.listdir(folder)) == [registry.name]  # no lock, no temporary file
        assert registry.read_bytes() == REGISTRY

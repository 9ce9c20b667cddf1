"""ObjectStorage against a real S3 endpoint (moto over HTTP, path-style, as with MinIO)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store
from pydantic import SecretStr

from processor.errors import BucketNameInvalid, ObjectNotFound, ObjectTooLarge, StorageUnavailable
from processor.settings import LimitsSettings, StorageSettings
from processor.storage import ObjectStorage
from tests.integration.servers import free_port


async def test_put_then_get_round_trips_bytes_content_type_and_metadata(
    storage_settings: StorageSettings, s3_bucket: Callable[[], str], s3_store: Callable[[str], S3Store]
) -> None:
    bucket = s3_bucket()
    url = f"s3://{bucket}/anonymized/0123456789abcdef/cam 7/frame+1.jpg"
    metadata = {"source": f"s3://{bucket}/cam 7/frame+1 é.jpg", "configuration-hash": "0123456789abcdef"}
    async with ObjectStorage(storage_settings, LimitsSettings()) as storage:
        await storage.put(url, b"\xff\xd8jpeg", content_type="image/jpeg", metadata=metadata)
        assert await storage.get(url) == b"\xff\xd8jpeg"

    raw = await obstore.get_async(s3_store(bucket), "anonymized/0123456789abcdef/cam 7/frame+1.jpg")
    attributes = raw.attributes
    assert attributes["Content-Type"] == "image/jpeg"
    assert attributes["configuration-hash"] == "0123456789abcdef"
    assert attributes["source"] == f"s3://{bucket}/cam 7/frame+1 %C3%A9.jpg"


async def test_a_replay_rewrites_the_same_key(storage_settings: StorageSettings, s3_bucket: Callable[[], str]) -> None:
    bucket = s3_bucket()
    async with ObjectStorage(storage_settings, LimitsSettings()) as storage:
        source = f"s3://{bucket}/cam/a.jpg"
        first = storage.output_url(source, "0123456789abcdef")
        await storage.put(first, b"v1", content_type="image/jpeg", metadata={})
        second = storage.output_url(source, "0123456789abcdef")
        await storage.put(second, b"v1", content_type="image/jpeg", metadata={})
        listed = [item async for item in storage.list(f"s3://{bucket}/anonymized/")]
    assert first == second
    assert listed == [(first, 2)]


async def test_missing_object_and_missing_bucket_are_not_found(
    storage_settings: StorageSettings, s3_bucket: Callable[[], str]
) -> None:
    bucket = s3_bucket()
    async with ObjectStorage(storage_settings, LimitsSettings()) as storage:
        with pytest.raises(ObjectNotFound):
            await storage.get(f"s3://{bucket}/nope.jpg")
        with pytest.raises(ObjectNotFound):
            await storage.get("s3://no-such-bucket-4f1c/nope.jpg")


async def test_objects_over_the_size_limit_are_refused(
    storage_settings: StorageSettings, s3_bucket: Callable[[], str], s3_store: Callable[[str], S3Store]
) -> None:
    bucket = s3_bucket()
    await obstore.put_async(s3_store(bucket), "big.jpg", b"x" * 1001)
    await obstore.put_async(s3_store(bucket), "fits.jpg", b"x" * 1000)
    async with ObjectStorage(storage_settings, LimitsSettings(max_object_bytes=1000)) as storage:
        assert len(await storage.get(f"s3://{bucket}/fits.jpg")) == 1000
        with pytest.raises(ObjectTooLarge, match="1001 bytes"):
            await storage.get(f"s3://{bucket}/big.jpg")


async def test_list_walks_a_prefix_recursively_with_sizes(
    storage_settings: StorageSettings, s3_bucket: Callable[[], str], s3_store: Callable[[str], S3Store]
) -> None:
    bucket = s3_bucket()
    keys = {"cam7/a.jpg": 1, "cam7/day 2/b.jpg": 2, "cam70/c.jpg": 3, "other/d.jpg": 4}
    for key, size in keys.items():
        await obstore.put_async(s3_store(bucket), key, b"x" * size)
    async with ObjectStorage(storage_settings, LimitsSettings()) as storage:
        cam7 = sorted([item async for item in storage.list(f"s3://{bucket}/cam7/")])
        everything = sorted([item async for item in storage.list(f"s3://{bucket}/")])
    assert cam7 == [(f"s3://{bucket}/cam7/a.jpg", 1), (f"s3://{bucket}/cam7/day 2/b.jpg", 2)]
    assert everything == sorted((f"s3://{bucket}/{key}", size) for key, size in keys.items())


async def test_an_unreachable_endpoint_is_a_transient_error() -> None:
    settings = StorageSettings(
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        s3_allow_http=True,
        timeout_s=2,
        connect_timeout_s=1,
        max_retries=0,
    )
    async with ObjectStorage(settings, LimitsSettings()) as storage:
        with pytest.raises(StorageUnavailable):
            await storage.get("s3://bucket/a.jpg")
        with pytest.raises(StorageUnavailable):
            await storage.put("s3://bucket/a.jpg", b"x", content_type="image/jpeg", metadata={})
        assert storage.answering, "two failures in a row may be a blip"
        with pytest.raises(StorageUnavailable):
            await storage.get("s3://bucket/a.jpg")
        assert not storage.answering


async def test_storage_is_answering_again_at_its_first_answer(tmp_path: Path) -> None:
    settings = StorageSettings(
        s3_endpoint=f"http://127.0.0.1:{free_port()}", s3_allow_http=True, connect_timeout_s=1, max_retries=0
    )
    async with ObjectStorage(settings.model_copy(update={"file_root": tmp_path}), LimitsSettings()) as storage:
        for _ in range(ObjectStorage.UNANSWERED_AFTER):
            with pytest.raises(StorageUnavailable):
                await storage.get("s3://bucket/a.jpg")
        assert not storage.answering
        with pytest.raises(ObjectNotFound):
            await storage.get(f"file://{tmp_path}/missing.jpg")  # an answer, if not the one hoped for
        assert storage.answering


class _Recorder(http.server.BaseHTTPRequestHandler):
    """An HTTP proxy that records the host of every request it is asked to forward, and answers 404."""

    hosts: list[str]

    def do_GET(self) -> None:
        self.hosts.append(self.headers.get("Host", ""))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def recording_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hosts signed storage requests go to, as seen by a real HTTP proxy (``HTTP_PROXY``, which obstore honours)."""
    hosts: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hosts": hosts})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        yield hosts
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_virtual_hosted_buckets_only_choose_a_subdomain_of_the_endpoint(recording_proxy: list[str]) -> None:
    settings = StorageSettings(
        s3_endpoint="http://minio.internal:9000",
        s3_virtual_hosted_style=True,
        s3_allow_http=True,
        s3_access_key_id=SecretStr("key"),
        s3_secret_access_key=SecretStr("secret"),
        max_retries=0,
    )
    async with ObjectStorage(settings, LimitsSettings()) as storage:
        for bucket in ("raw", "other"):
            with pytest.raises(ObjectNotFound):
                await storage.get(f"s3://{bucket}/cam/a.jpg")
        assert recording_proxy == ["raw.minio.internal:9000", "other.minio.internal:9000"]
        for url in ("s3://evil.com/a.jpg", "s3://raw.evil.com/a.jpg", "s3://a.b/a.jpg"):
            with pytest.raises(BucketNameInvalid, match="virtual-hosted-style host label"):
                await storage.get(url)
            with pytest.raises(BucketNameInvalid):
                await storage.put(url, b"x", content_type="image/jpeg", metadata={})
    assert len(recording_proxy) == 2  # nothing was sent for the refused names

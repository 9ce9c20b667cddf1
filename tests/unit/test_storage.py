"""Object storage without a server: URL parsing, output keys, file:// roots that cannot be escaped, memory://."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from processor.errors import InvalidEvent, ObjectNotFound, ObjectTooLarge
from processor.settings import LimitsSettings, StorageSettings
from processor.storage import Location, ObjectStorage, parse_url

HASH = "0123456789abcdef"


def storage(**settings: object) -> ObjectStorage:
    return ObjectStorage(StorageSettings(**settings), LimitsSettings())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://frames/cam 7/a+b.jpg", Location("s3", "frames", "cam 7/a+b.jpg")),
        ("gs://bucket/x/y.png", Location("gs", "bucket", "x/y.png")),
        ("az://container/x.jpg", Location("az", "container", "x.jpg")),
        ("memory://m/k", Location("memory", "m", "k")),
        ("file:///data/in/a.jpg", Location("file", "/data/in", "a.jpg")),
    ],
)
def test_urls_split_into_bucket_and_verbatim_key(url: str, expected: Location) -> None:
    assert parse_url(url, None) == expected
    assert expected.url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.jpg",
        "s3://bucket",
        "s3://bucket/",
        "s3:///key",
        "s3://bucket/a/../../other/key",
        "s3://bucket/a//b",
        "file://relative/a.jpg",
        "file:///data/../etc/passwd",
    ],
)
def test_bad_urls_are_invalid_events(url: str) -> None:
    with pytest.raises(InvalidEvent):
        parse_url(url, None)


def test_output_next_to_the_source_under_the_prefix_and_hash() -> None:
    store = storage()
    assert store.output_url("s3://frames/cam7/a.jpg", HASH) == f"s3://frames/anonymized/{HASH}/cam7/a.jpg"
    assert store.output_url("s3://frames/cam7/a.jpg", HASH) == store.output_url("s3://frames/cam7/a.jpg", HASH)
    assert store.output_url("file:///data/in/a.jpg", HASH) == f"file:///data/in/anonymized/{HASH}/a.jpg"


def test_output_url_setting_keeps_buckets_apart() -> None:
    store = storage(output_url="s3://out/private/")
    assert store.output_url("s3://a/x.jpg", HASH) == f"s3://out/private/{HASH}/a/x.jpg"
    assert store.output_url("s3://b/x.jpg", HASH) == f"s3://out/private/{HASH}/b/x.jpg"
    assert store.output_url("file:///data/x.jpg", HASH) == f"s3://out/private/{HASH}/data/x.jpg"


def test_explicit_output_wins_but_is_validated() -> None:
    store = storage(output_url="s3://out/")
    assert store.output_url("s3://a/x.jpg", HASH, "gs://elsewhere/y.jpg") == "gs://elsewhere/y.jpg"
    with pytest.raises(InvalidEvent):
        store.output_url("s3://a/x.jpg", HASH, "s3://elsewhere/../y.jpg")


def test_outputs_are_recognised_so_they_are_never_reprocessed() -> None:
    store = storage()
    output = store.output_url("s3://frames/cam7/a.jpg", HASH)
    assert store.is_output(output)
    assert not store.is_output("s3://frames/cam7/a.jpg")
    assert not store.is_output("s3://frames/anonymized-not/x.jpg")
    assert storage(output_url="s3://out/").is_output(f"s3://out/{HASH}/frames/a.jpg")


async def test_file_round_trip_inside_the_root(tmp_path: Path) -> None:
    async with storage(file_root=tmp_path) as store:
        url = f"file://{tmp_path}/cam 7/a.jpg"
        await store.put(url, b"jpeg bytes", content_type="image/jpeg", metadata={"source": "x"})
        assert (tmp_path / "cam 7" / "a.jpg").read_bytes() == b"jpeg bytes"
        assert await store.get(url) == b"jpeg bytes"
        out = store.output_url(url, HASH)
        assert out == f"file://{tmp_path}/anonymized/{HASH}/cam 7/a.jpg"
        assert [item async for item in store.list(f"file://{tmp_path}/cam 7")] == [(url, 10)]


async def test_file_without_a_root_writes_outputs_into_new_folders(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"frame")
    async with storage() as store:
        output = store.output_url(f"file://{tmp_path}/in/a.jpg", HASH)
        await store.put(output, b"hidden", content_type="image/jpeg", metadata={})
        assert await store.get(output) == b"hidden"
        with pytest.raises(ObjectNotFound):
            await store.get(f"file://{tmp_path}/no-such-folder/a.jpg")
        with pytest.raises(ObjectNotFound):
            [item async for item in store.list(f"file://{tmp_path}/no-such-folder")]
    assert (tmp_path / "in" / "anonymized" / HASH / "a.jpg").read_bytes() == b"hidden"
    assert not (tmp_path / "no-such-folder").exists()


@pytest.mark.parametrize(
    "escape",
    [
        "{root}/../outside.txt",
        "{root}/sub/../../outside.txt",
        "{parent}/outside.txt",
        "/etc/passwd",
        "{root}/link/outside.txt",
    ],
)
async def test_file_urls_never_escape_the_root(tmp_path: Path, escape: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_bytes(b"secret")
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    url = "file://" + escape.format(root=root, parent=tmp_path)
    async with storage(file_root=root) as store:
        with pytest.raises(InvalidEvent):
            await store.get(url)
        with pytest.raises(InvalidEvent):
            await store.put(url, b"overwritten", content_type="text/plain", metadata={})
        with pytest.raises(InvalidEvent):
            store.output_url(f"file://{root}/a.jpg", HASH, url)
    assert (tmp_path / "outside.txt").read_bytes() == b"secret"


async def test_memory_buckets_are_shared_by_the_process_and_keep_metadata() -> None:
    bucket = f"memory://test-{uuid.uuid4().hex}"
    async with storage() as writer:
        await writer.put(f"{bucket}/a/1.jpg", b"one", content_type="image/jpeg", metadata={"source": "s3://x/ü"})
        await writer.put(f"{bucket}/a/2.jpg", b"two!", content_type="image/jpeg", metadata={})
        await writer.put(f"{bucket}/b/3.jpg", b"three", content_type="image/jpeg", metadata={})
    async with storage() as reader:
        assert await reader.get(f"{bucket}/a/1.jpg") == b"one"
        listed = sorted([item async for item in reader.list(f"{bucket}/a/")])
    assert listed == [(f"{bucket}/a/1.jpg", 3), (f"{bucket}/a/2.jpg", 4)]


async def test_missing_and_too_large_objects_are_permanent_errors() -> None:
    bucket = f"memory://test-{uuid.uuid4().hex}"
    store = ObjectStorage(StorageSettings(), LimitsSettings(max_object_bytes=4))
    async with store:
        await store.put(f"{bucket}/four", b"1234", content_type="application/octet-stream", metadata={})
        await store.put(f"{bucket}/five", b"12345", content_type="application/octet-stream", metadata={})
        assert await store.get(f"{bucket}/four") == b"1234"
        with pytest.raises(ObjectTooLarge):
            await store.get(f"{bucket}/five")
        with pytest.raises(ObjectNotFound):
            await store.get(f"{bucket}/missing")

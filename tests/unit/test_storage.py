"""Object storage without a server: URL parsing, output keys, file:// roots that cannot be escaped, memory://."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from processor.errors import (
    BucketNameInvalid,
    InvalidEvent,
    ObjectNotFound,
    ObjectTooLarge,
    OutputNotAllowed,
    SchemeNotAllowed,
)
from processor.settings import LimitsSettings, StorageSettings
from processor.storage import Location, ObjectStorage, parse_url, virtual_hosted_endpoint

HASH = "0123456789abcdef"


def storage(**settings: object) -> ObjectStorage:
    return ObjectStorage(StorageSettings(**settings), LimitsSettings())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://frames/cam 7/a+b.jpg", Location("s3", "frames", "cam 7/a+b.jpg")),
        ("gs://bucket/x/y.png", Location("gs", "bucket", "x/y.png")),
        ("az://container/x.jpg", Location("az", "container", "x.jpg")),
        ("memory://mem/k", Location("memory", "mem", "k")),
        ("file:///data/in/a.jpg", Location("file", "/data", "in/a.jpg")),
    ],
)
def test_urls_split_into_bucket_and_verbatim_key(url: str, expected: Location) -> None:
    assert parse_url(url, Path("/data")) == expected
    assert expected.url == url


def test_file_urls_are_refused_without_a_file_root() -> None:
    with pytest.raises(SchemeNotAllowed, match="file_root"):
        parse_url("file:///data/in/a.jpg", None)
    with pytest.raises(SchemeNotAllowed, match="file_root"):
        storage().location("file:///etc/passwd")


def test_schemes_not_enabled_are_refused() -> None:
    store = storage(schemes=["s3"])
    assert store.location("s3://frames/a.jpg").bucket == "frames"
    for url in ("gs://frames/a.jpg", "az://frames/a.jpg", "memory://frames/a.jpg"):
        with pytest.raises(SchemeNotAllowed, match=r"storage\.schemes"):
            store.location(url)


@pytest.mark.parametrize(
    "url",
    [
        "s3://ab/k",  # too short
        "s3://" + "a" * 64 + "/k",  # too long
        "s3://Frames/k",  # upper case
        "s3://fra_mes-/k",  # ends with a hyphen
        "s3://-frames/k",
        "s3://fra..mes/k",
        "s3://192.168.1.10/k",  # an IP address: virtual-hosted style would send requests there
        "s3://evil.com:8080/k",
        "s3://host@evil/k",
        "gs://bucket%2fother/k",
        "az://con_tainer/k",  # no underscores in Azure containers
        "az://con--tainer/k",  # nor consecutive hyphens
        "memory://a b c/k",
    ],
)
def test_bucket_names_outside_the_providers_rules_are_refused(url: str) -> None:
    with pytest.raises(BucketNameInvalid):
        parse_url(url, None)


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
    store = storage(file_root="/data")
    assert store.output_url("s3://frames/cam7/a.jpg", HASH) == f"s3://frames/anonymized/{HASH}/cam7/a.jpg"
    assert store.output_url("s3://frames/cam7/a.jpg", HASH) == store.output_url("s3://frames/cam7/a.jpg", HASH)
    assert store.output_url("file:///data/in/a.jpg", HASH) == f"file:///data/anonymized/{HASH}/in/a.jpg"


def test_output_url_setting_keeps_buckets_apart() -> None:
    store = storage(output_url="s3://out/private/", file_root="/data")
    assert store.output_url("s3://aaa/x.jpg", HASH) == f"s3://out/private/{HASH}/aaa/x.jpg"
    assert store.output_url("s3://bbb/x.jpg", HASH) == f"s3://out/private/{HASH}/bbb/x.jpg"
    assert store.output_url("file:///data/x.jpg", HASH) == f"s3://out/private/{HASH}/x.jpg"


def test_an_explicit_output_inside_the_output_url_wins() -> None:
    store = storage(output_url="s3://out/private/")
    assert store.output_url("s3://aaa/x.jpg", HASH, "s3://out/private/y.jpg") == "s3://out/private/y.jpg"
    with pytest.raises(InvalidEvent):
        store.output_url("s3://aaa/x.jpg", HASH, "s3://out/private/../y.jpg")


def test_an_explicit_output_under_the_source_buckets_prefix_wins() -> None:
    store = storage()
    chosen = "s3://frames/anonymized/mine/x.jpg"
    assert store.output_url("s3://frames/cam/x.jpg", HASH, chosen) == chosen


@pytest.mark.parametrize(
    ("settings", "source", "output"),
    [
        ({}, "s3://frames/cam/x.jpg", "s3://frames/cam/x.jpg"),  # the input itself
        ({}, "s3://frames/cam/x.jpg", "s3://frames/cam/y.jpg"),  # beside it, outside the prefix
        ({}, "s3://frames/cam/x.jpg", "s3://other/anonymized/x.jpg"),  # another bucket
        ({}, "s3://frames/cam/x.jpg", "gs://frames/anonymized/x.jpg"),  # another provider
        ({"output_url": "s3://out/private/"}, "s3://aaa/x.jpg", "s3://out/public/x.jpg"),
        ({"output_url": "s3://out/private/"}, "s3://aaa/x.jpg", "s3://out/private-not/x.jpg"),
        ({"output_url": "s3://out/private/"}, "s3://aaa/x.jpg", "s3://aaa/x.jpg"),
        ({"output_prefix": ""}, "s3://frames/x.jpg", "s3://frames/x.jpg"),
    ],
)
def test_an_explicit_output_outside_the_output_location_or_on_the_source_is_refused(
    settings: dict[str, object], source: str, output: str
) -> None:
    with pytest.raises(OutputNotAllowed):
        storage(**settings).output_url(source, HASH, output)


def test_outputs_are_recognised_so_they_are_never_reprocessed() -> None:
    store = storage()
    output = store.output_url("s3://frames/cam7/a.jpg", HASH)
    assert store.is_output(output)
    assert not store.is_output("s3://frames/cam7/a.jpg")
    assert not store.is_output("s3://frames/anonymized-not/x.jpg")
    assert storage(output_url="s3://out/").is_output(f"s3://out/{HASH}/frames/a.jpg")


def test_an_output_check_of_a_refused_url_raises_for_the_caller_to_classify() -> None:
    with pytest.raises(InvalidEvent):
        storage().is_output("s3://frames/cam//a.jpg")


async def test_file_round_trip_inside_the_root(tmp_path: Path) -> None:
    async with storage(file_root=tmp_path) as store:
        url = f"file://{tmp_path}/cam 7/a.jpg"
        await store.put(url, b"jpeg bytes", content_type="image/jpeg", metadata={"source": "x"})
        assert (tmp_path / "cam 7" / "a.jpg").read_bytes() == b"jpeg bytes"
        assert await store.get(url) == b"jpeg bytes"
        out = store.output_url(url, HASH)
        assert out == f"file://{tmp_path}/anonymized/{HASH}/cam 7/a.jpg"
        assert [item async for item in store.list(f"file://{tmp_path}/cam 7")] == [(url, 10)]


async def test_file_outputs_go_into_new_folders_and_reads_create_none(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"frame")
    async with storage(file_root=tmp_path) as store:
        output = store.output_url(f"file://{tmp_path}/in/a.jpg", HASH)
        await store.put(output, b"hidden", content_type="image/jpeg", metadata={})
        assert await store.get(output) == b"hidden"
        with pytest.raises(ObjectNotFound):
            await store.get(f"file://{tmp_path}/no-such-folder/a.jpg")
    assert (tmp_path / "anonymized" / HASH / "in" / "a.jpg").read_bytes() == b"hidden"
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


@pytest.mark.parametrize(
    ("bucket", "endpoint", "expected"),
    [
        ("raw", "http://minio:9000", "http://raw.minio:9000"),
        ("raw-2", "https://storage.example.com/base/", "https://raw-2.storage.example.com/base"),
        ("raw", None, None),  # AWS: <bucket>.s3.<region>.amazonaws.com
    ],
)
def test_a_virtual_hosted_bucket_is_one_label_in_front_of_the_endpoint_host(
    bucket: str, endpoint: str | None, expected: str | None
) -> None:
    assert virtual_hosted_endpoint(bucket, endpoint) == expected


@pytest.mark.parametrize("bucket", ["evil.com", "raw.evil.com", "a.b", "raw:9000", "x@evil", "ev/il", "ab", "-raw"])
def test_bucket_names_that_are_not_one_dns_label_are_refused_for_virtual_hosted_style(bucket: str) -> None:
    with pytest.raises(BucketNameInvalid, match="virtual-hosted-style host label"):
        virtual_hosted_endpoint(bucket, "http://minio:9000")


def test_virtual_hosted_style_needs_an_endpoint_host_name() -> None:
    with pytest.raises(BucketNameInvalid, match="not a host name"):
        virtual_hosted_endpoint("raw", "http://127.0.0.1:9000")


def test_dotted_buckets_are_refused_only_with_virtual_hosted_style() -> None:
    assert storage(s3_endpoint="http://minio:9000").location("s3://my.bucket/a.jpg").bucket == "my.bucket"
    virtual = storage(s3_endpoint="http://minio:9000", s3_virtual_hosted_style=True)
    with pytest.raises(BucketNameInvalid):
        virtual.location("s3://my.bucket/a.jpg")
    assert virtual.location("s3://raw/a.jpg").bucket == "raw"

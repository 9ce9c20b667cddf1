"""Object storage behind one async interface (obstore): ``s3://``, ``gs://``, ``az://``, ``file://`` and ``memory://``.

URLs are ``scheme://bucket/key`` with the key verbatim (not percent-decoded): ``s3://frames/cam 7/a.jpg`` names
the key ``cam 7/a.jpg``. ``file:///abs/path`` exists only with ``StorageSettings.file_root`` set and is rooted
there (keys can never escape it); the other schemes only when listed in ``StorageSettings.schemes``. Bucket
names are checked against the provider's naming rules before they reach a host name or obstore.
``memory://bucket/`` stores live as long as the process, one per bucket name, shared by every ObjectStorage
(tests, embedded runs).

Output keys are a pure function of the source key, the output settings and the configuration hash, so a
replay rewrites the same key with the same bytes. An event's explicit ``output`` must lie under the output
location (``output_url``, or the source bucket's ``output_prefix``) and can never be its source.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self
from urllib.parse import quote, urlsplit, urlunsplit

import obstore
from obstore.exceptions import BaseError, InvalidPathError
from obstore.store import AzureStore, GCSStore, LocalStore, MemoryStore, S3Store

from processor.errors import (
    BucketNameInvalid,
    InvalidEvent,
    ObjectNotFound,
    ObjectTooLarge,
    OutputNotAllowed,
    ProcessorError,
    SchemeNotAllowed,
    StorageUnavailable,
)
from processor.settings import LimitsSettings, StorageSettings

if TYPE_CHECKING:
    from obstore.store import AzureConfig, ClientConfig, GCSConfig, ObjectStore, RetryConfig, S3Config

SCHEMES: Final = frozenset({"s3", "gs", "az", "file", "memory"})
_MAX_CACHED_STORES = 256
# Printable ASCII except '%': metadata values travel as HTTP headers, everything else is percent-encoded.
_HEADER_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")

# S3 (and GCS without dots' 222-character form): 3-63 lowercase letters, digits, dots, hyphens (GCS: underscores),
# starting and ending with a letter or digit, no '..', not an IP address. Azure containers: letters, digits and
# single hyphens only. memory:// buckets follow the S3 rule too: one rule fewer to remember.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_AZURE_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
# A virtual-hosted-style bucket becomes the first label of a host name: one DNS label, no dots.
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]")

_memory_stores: dict[str, MemoryStore] = {}


@dataclass(frozen=True)
class Location:
    """Where an object lives: ``bucket`` is the bucket/container, or for ``file`` the absolute root folder."""

    scheme: str
    bucket: str
    key: str

    @property
    def url(self) -> str:
        if self.scheme == "file":
            return (
                "file://" + (PurePosixPath(self.bucket) / self.key).as_posix() if self.key else "file://" + self.bucket
            )
        return f"{self.scheme}://{self.bucket}/{self.key}"


def parse_url(url: str, file_root: Path | None, *, prefix: bool = False, schemes: frozenset[str] = SCHEMES) -> Location:
    """Split an object URL (``prefix=True``: a folder or bucket prefix, key may be empty).

    Raises InvalidEvent for a malformed URL, SchemeNotAllowed for a scheme outside ``schemes`` (``file`` also
    needs ``file_root``), BucketNameInvalid for a bucket name the provider forbids."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in SCHEMES:
        raise InvalidEvent(f"unsupported object URL {url!r}: expected one of {', '.join(sorted(SCHEMES))}://")
    if scheme == "file" and file_root is None:
        raise SchemeNotAllowed(f"object URL {url!r}: file:// needs storage.file_root, which is not set")
    if scheme not in schemes:
        raise SchemeNotAllowed(f"object URL {url!r}: {scheme}:// is not enabled here (storage.schemes)")
    if scheme == "file":
        assert file_root is not None  # noqa: S101 - checked above; for mypy
        return _file_location(rest, file_root, prefix=prefix)
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InvalidEvent(f"object URL {url!r} names no bucket")
    check_bucket_name(scheme, bucket)
    _check_key(url, key, prefix=prefix)
    return Location(scheme, bucket, key)


def check_bucket_name(scheme: str, bucket: str) -> None:
    """Raises BucketNameInvalid unless ``bucket`` follows the naming rules of ``scheme``'s provider."""
    if scheme == "az":
        valid = _AZURE_CONTAINER.fullmatch(bucket) is not None
    else:
        valid = _BUCKET_NAME.fullmatch(bucket) is not None and ".." not in bucket and not _IP_ADDRESS.fullmatch(bucket)
    if not valid:
        rule = (
            "and single hyphens" if scheme == "az" else "dots and hyphens, starting and ending with a letter or digit"
        )
        raise BucketNameInvalid(
            f"bucket name {bucket[:80]!r} is not valid for {scheme}://: 3-63 lowercase letters, digits, {rule}"
        )


def virtual_hosted_endpoint(bucket: str, endpoint: str | None) -> str | None:
    """The endpoint a virtual-hosted-style S3 store of ``bucket`` sends its signed requests to:
    ``<scheme>://<bucket>.<endpoint host>[:port]``, or None for AWS (``<bucket>.s3.<region>.amazonaws.com``).

    obstore takes a configured endpoint as the bucket's own host and ignores the bucket name, so every bucket
    would reach one bucket; we build each bucket's host here instead, and the bucket may only add one DNS label
    in front of the configured host (no dots, ports, ``@`` or slashes). Raises BucketNameInvalid otherwise."""
    if _DNS_LABEL.fullmatch(bucket) is None:
        raise BucketNameInvalid(
            f"bucket name {bucket[:80]!r} cannot be a virtual-hosted-style host label"
            " (storage.s3_virtual_hosted_style):"
            " 3-63 lowercase letters, digits and hyphens, no dots"
        )
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    host = parts.hostname
    if not host or _IP_ADDRESS.fullmatch(host) or ":" in host:
        raise BucketNameInvalid(
            f"storage.s3_endpoint {parts.scheme}://{host or ''} is not a host name: virtual-hosted-style requests need"
            " one (bucket.host)"
        )
    netloc = f"{bucket}.{host}" + (f":{parts.port}" if parts.port is not None else "")
    bucket_endpoint = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    if urlsplit(bucket_endpoint).hostname != f"{bucket}.{host}":  # belt and braces: never another host
        raise BucketNameInvalid(f"bucket name {bucket[:80]!r} would leave the endpoint host {host}")
    return bucket_endpoint


def _file_location(path_text: str, file_root: Path, *, prefix: bool) -> Location:
    url = "file://" + path_text
    path = PurePosixPath(path_text)
    if not path.is_absolute():
        raise InvalidEvent(f"file URL {url!r} must be absolute: file:///path")
    if ".." in path.parts:
        raise InvalidEvent(f"file URL {url!r} may not contain '..'")
    root = PurePosixPath(os.path.abspath(file_root))
    if not path.is_relative_to(root):
        raise InvalidEvent(f"file URL {url!r} is outside the file root {root}")
    if not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise InvalidEvent(f"file URL {url!r} leaves the file root {root} through a symbolic link")
    key = path.relative_to(root).as_posix()
    key = "" if key == "." else key
    _check_key(url, key, prefix=prefix)
    return Location("file", root.as_posix(), key)


def _check_key(url: str, key: str, *, prefix: bool) -> None:
    if not key and not prefix:
        raise InvalidEvent(f"object URL {url!r} names no object key")
    segments = key.rstrip("/").split("/") if key else []
    if any(segment in {"", ".", ".."} for segment in segments):
        raise InvalidEvent(f"object URL {url!r} has an empty, '.' or '..' path segment")


class ObjectStorage:
    """Get, put and list objects by URL; stores are created on first use and cached per (scheme, bucket).

    Errors are translated at this edge: missing object → ObjectNotFound, larger than
    ``limits.max_object_bytes`` → ObjectTooLarge, bad URL → InvalidEvent, anything else from the store
    (network, timeouts, 5xx, credentials) → StorageUnavailable (transient).

    :attr:`answering` is false after ``UNANSWERED_AFTER`` gets/puts in a row failed as unavailable, true again at
    the next one that succeeds (the stream's retries are the probes): ``/ready`` of ``run`` follows it.
    """

    UNANSWERED_AFTER = 3

    def __init__(self, settings: StorageSettings, limits: LimitsSettings) -> None:
        self._settings = settings
        self._unavailable_in_a_row = 0
        self._limits = limits
        self._stores: dict[tuple[str, str], ObjectStore] = {}
        prefix = settings.output_prefix.strip("/")
        self._output_prefix = prefix + "/" if prefix else ""
        self._output_base = settings.output_url.rstrip("/") if settings.output_url else None
        self._output_pattern = re.compile("/" + re.escape(self._output_prefix) + "[0-9a-f]{8,64}/")
        self._schemes = frozenset(settings.schemes) | ({"file"} if settings.file_root is not None else set())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stores.clear()

    def location(self, url: str, *, prefix: bool = False) -> Location:
        where = parse_url(url, self._settings.file_root, prefix=prefix, schemes=self._schemes)
        if where.scheme == "s3" and self._settings.s3_virtual_hosted_style:
            virtual_hosted_endpoint(where.bucket, self._settings.s3_endpoint)
        return where

    async def get(self, url: str) -> bytes:
        """The object's bytes; checks the size before reading the body."""
        where = self.location(url)
        with self._watched(), _translated(url):
            result = await obstore.get_async(self._store(where), where.key)
            size = result.meta["size"]
            if size > self._limits.max_object_bytes:
                raise ObjectTooLarge(f"{url}: {size} bytes, limit {self._limits.max_object_bytes}")
            return bytes(await result.bytes_async())

    async def put(self, url: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]) -> None:
        """Write (overwrite) the object with its content type and user metadata (``x-amz-meta-*`` on S3).

        ``file://`` cannot hold metadata (obstore's LocalStore has no attributes): only the bytes are written.
        Metadata values outside printable ASCII are percent-encoded. Azure allows only identifiers as metadata
        names: on ``az://`` a ``-`` in a name is written ``_`` (``configuration_hash``).
        """
        where = self.location(url)
        attributes = None
        if where.scheme != "file":
            attributes = {"Content-Type": content_type}
            attributes.update(
                {
                    _metadata_name(where.scheme, name): quote(value, safe=_HEADER_SAFE)
                    for name, value in metadata.items()
                }
            )
        with self._watched(), _translated(url):
            # A memoryview is handed to the Rust side as is; bytes would be copied first (~0.1 ms per 1080p JPEG).
            await obstore.put_async(self._store(where, create=True), where.key, memoryview(data), attributes=attributes)

    @property
    def answering(self) -> bool:
        return self._unavailable_in_a_row < self.UNANSWERED_AFTER

    @contextmanager
    def _watched(self) -> Iterator[None]:
        """Count a storage call that fails as unavailable; a success or a permanent error (not found, too large)
        means the storage answered; a cancellation says nothing either way."""
        try:
            yield
        except StorageUnavailable:
            self._unavailable_in_a_row += 1
            raise
        except ProcessorError:
            self._unavailable_in_a_row = 0
            raise
        self._unavailable_in_a_row = 0

    def output_url(self, source_url: str, configuration_hash: str, explicit: str | None = None) -> str:
        """Where the anonymized object of ``source_url`` goes; pure.

        Without ``explicit`` (the event's ``output``), with ``output_url`` set:
        ``<output_url>/<hash>/<bucket>/<key>`` (the bucket keeps two sources' keys apart; for file:// the path
        under the root); else next to the source: ``<scheme>://<bucket>/<output_prefix><hash>/<key>``.
        ``explicit`` must lie under that output location (``<output_url>/`` or ``<bucket>/<output_prefix>``)
        and differ from the source, else OutputNotAllowed: an event may not overwrite inputs or write elsewhere.
        """
        source = self.location(source_url)
        if explicit is None:
            if self._output_base is not None:
                identity = f"{source.bucket}/{source.key}" if source.scheme != "file" else source.key
                return self.location(f"{self._output_base}/{configuration_hash}/{identity}").url
            return Location(source.scheme, source.bucket, f"{self._output_prefix}{configuration_hash}/{source.key}").url
        target = self.location(explicit)
        if target.url == source.url:
            raise OutputNotAllowed(f"output {explicit!r} is the event's source: an input is never overwritten")
        if self._output_base is not None:
            allowed = self.location(self._output_base, prefix=True).url.rstrip("/") + "/"
            if not target.url.startswith(allowed):
                raise OutputNotAllowed(f"output {explicit!r} is outside the output location {allowed}")
        elif (target.scheme, target.bucket) != (source.scheme, source.bucket) or not target.key.startswith(
            self._output_prefix
        ):
            where = Location(source.scheme, source.bucket, self._output_prefix).url
            raise OutputNotAllowed(f"output {explicit!r} is outside the output location {where}")
        return target.url

    def is_output(self, url: str) -> bool:
        """True for URLs where this processor writes outputs: never enqueue or process them (no feedback loop)."""
        if self._output_base is not None and url.startswith(self._output_base + "/"):
            return True
        where = self.location(url, prefix=True)  # raises for a URL the storage refuses: the caller dead-letters
        path = "/" + where.key if where.scheme != "file" else where.url.removeprefix("file://")
        return self._output_pattern.search(path) is not None

    def _store(self, where: Location, *, create: bool = False) -> ObjectStore:
        """The cached store of ``where``'s bucket; a missing file:// root folder is created for writes only."""
        cache_key = (where.scheme, where.bucket)
        store = self._stores.get(cache_key)
        if store is None:
            if where.scheme == "file" and not create and not os.path.isdir(where.bucket):
                raise ObjectNotFound(f"folder {where.bucket} does not exist")
            if len(self._stores) >= _MAX_CACHED_STORES:
                self._stores.pop(next(iter(self._stores)))
            store = self._stores[cache_key] = self._new_store(where)
        return store

    def _new_store(self, where: Location) -> ObjectStore:
        settings = self._settings
        client: ClientConfig = {
            "timeout": timedelta(seconds=settings.timeout_s),
            "connect_timeout": timedelta(seconds=settings.connect_timeout_s),
        }
        retry: RetryConfig = {
            "max_retries": settings.max_retries,
            "retry_timeout": timedelta(seconds=settings.timeout_s),
        }
        if where.scheme == "s3":
            s3: S3Config = {
                "region": settings.s3_region,
                "virtual_hosted_style_request": settings.s3_virtual_hosted_style,
            }
            endpoint = settings.s3_endpoint
            if settings.s3_virtual_hosted_style:
                endpoint = virtual_hosted_endpoint(where.bucket, endpoint)
            if endpoint is not None:
                s3["endpoint"] = endpoint
            if settings.s3_access_key_id is not None and settings.s3_secret_access_key is not None:
                s3["access_key_id"] = settings.s3_access_key_id.get_secret_value()
                s3["secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
            client["allow_http"] = settings.s3_allow_http
            return S3Store(where.bucket, config=s3, client_options=client, retry_config=retry)
        if where.scheme == "gs":
            client["allow_http"] = settings.gcs_allow_http
            return GCSStore(where.bucket, config=_gcs_config(settings), client_options=client, retry_config=retry)
        if where.scheme == "az":
            client["allow_http"] = settings.azure_allow_http
            return AzureStore(where.bucket, config=_azure_config(settings), client_options=client, retry_config=retry)
        if where.scheme == "file":
            return LocalStore(where.bucket, mkdir=True)
        return _memory_stores.setdefault(where.bucket, MemoryStore())

    async def list(self, prefix_url: str) -> AsyncIterator[tuple[str, int]]:
        """Every object under a bucket prefix or folder, recursively, as (url, size in bytes).

        Prefixes match whole path segments (obstore semantics): ``s3://b/cam7`` lists ``cam7/...``, not
        ``cam70/...``.
        """
        where = self.location(prefix_url, prefix=True)
        with _translated(prefix_url):
            chunks = obstore.list(self._store(where), where.key.rstrip("/") or None, chunk_size=1000)
            async for chunk in chunks:
                for meta in chunk:
                    yield Location(where.scheme, where.bucket, meta["path"]).url, meta["size"]


def _gcs_config(settings: StorageSettings) -> GCSConfig:
    gcs: GCSConfig = {}
    if settings.gcs_service_account_path is not None:
        gcs["service_account"] = str(settings.gcs_service_account_path)
    return gcs


def _azure_config(settings: StorageSettings) -> AzureConfig:
    azure: AzureConfig = {}
    if settings.azure_account_name is not None:
        azure["account_name"] = settings.azure_account_name
    if settings.azure_account_key is not None:
        azure["account_key"] = settings.azure_account_key.get_secret_value()
    if settings.azure_endpoint is not None:
        azure["endpoint"] = settings.azure_endpoint
    return azure


def _metadata_name(scheme: str, name: str) -> str:
    return name.replace("-", "_") if scheme == "az" else name


@contextmanager
def _translated(url: str) -> Iterator[None]:
    """Map obstore's exceptions to the processor's error taxonomy."""
    try:
        yield
    except FileNotFoundError as error:  # obstore raises the builtin for a missing object
        raise ObjectNotFound(f"{url}: not found") from error
    except (InvalidPathError, ValueError) as error:  # obstore raises ValueError for keys it cannot parse
        raise InvalidEvent(f"{url}: invalid object path ({_first_line(error)})") from error
    except (BaseError, OSError) as error:
        raise StorageUnavailable(f"{url}: {type(error).__name__}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    return str(error).split("\n", 1)[0]

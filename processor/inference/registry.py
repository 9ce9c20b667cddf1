"""The URL registry (``url_configuration.json``) and the capabilities of the registered inference services.

Updates are atomic (temporary file + ``os.replace``) and serialised by an asyncio lock plus an exclusive file lock,
and every update re-reads the file first, so concurrent updates, from this process or another, lose nothing.
Capabilities are rediscovered whenever the registry changes and every ``refresh_interval_s`` (sooner, every
``probe_interval_s``, while some URL does not answer). A URL that does not answer is logged and retried; it never
stops the service from starting, nor delays it by more than ``connect_timeout_s``. A missing file means the
embedded default: ``{"urls": ["builtin"]}``. A registry managed elsewhere (``inference.url_registry_read_only``, or a
file or lock the file system refuses to write) refuses every change with :class:`RegistryReadOnly`, file unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import orjson
from pydantic import ValidationError

from processor.anonymize.registry import technique_names
from processor.errors import InferenceRejected, InferenceUnavailable, InvalidConfiguration, RegistryReadOnly
from processor.inference.builtin.catalog import BUILTIN_URL, CATALOG, ModelInfo
from processor.inference.capabilities import Capabilities, ServiceInfo, normalize_url, redact_url
from processor.inference.http import InferenceClient
from processor.settings import InferenceSettings
from schemas.config import UrlConfiguration

log = logging.getLogger(__name__)

DEFAULT_URLS = (BUILTIN_URL,)
_READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class UrlRegistry:
    """Registered inference URLs and what they serve; an async context manager (refreshes in the background).

    :param settings: the ``inference`` settings section (file path, refresh and probe intervals).
    :param client: the HTTP client used for discovery (the registry does not close it).
    :param techniques: returns the anonymization technique names, listed in the capabilities.
    :param builtin_models: the in-process models that ``builtin`` stands for.
    """

    def __init__(
        self,
        settings: InferenceSettings,
        client: InferenceClient,
        *,
        techniques: Callable[[], Iterable[str]] = technique_names,
        builtin_models: Sequence[ModelInfo] = tuple(CATALOG.values()),
    ) -> None:
        self._settings = settings
        self._path = settings.url_configuration
        self._client = client
        self._techniques = techniques
        self._builtin = ServiceInfo(BUILTIN_URL, tuple(builtin_models))
        self._lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._remote_builtin_models = settings.remote_builtin_models
        self._capabilities = Capabilities(builtin=self._builtin, remote_builtin_models=self._remote_builtin_models)
        self._task: asyncio.Task[None] | None = None
        self._discovered = asyncio.Event()

    async def __aenter__(self) -> Self:
        """Read the file (a broken one raises :class:`InvalidConfiguration`), start discovery in the background and
        wait for its first round at most ``connect_timeout_s``: a slow or silent URL never holds up the start."""
        urls = self._shown(await asyncio.to_thread(read_urls, self._path))
        services = tuple(self._builtin if url == BUILTIN_URL else ServiceInfo(url, None) for url in urls)
        self._capabilities = Capabilities(
            services, self._builtin, tuple(self._techniques()), remote_builtin_models=self._remote_builtin_models
        )
        self._task = asyncio.create_task(self._refresh_forever(), name="inference-registry-refresh")
        try:
            await asyncio.wait_for(self._discovered.wait(), self._settings.connect_timeout_s)
        except TimeoutError:
            log.warning(
                "inference discovery still running after %.1f s; continuing in the background",
                self._settings.connect_timeout_s,
            )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def capabilities(self) -> Capabilities:
        """What every registered URL serves, as last discovered (registry order)."""
        return self._capabilities

    @property
    def urls(self) -> tuple[str, ...]:
        return self._capabilities.urls

    async def add(self, url: str) -> str:
        """Register ``url`` (normalised: trailing slash, lower-case scheme and host) and return it as shown
        (credentials redacted: ``http://***@host/``).

        The URL must answer ``GET {url}models`` first (``builtin`` needs no check). Raises
        :class:`InvalidConfiguration` for a malformed URL or a service that answers but not with models, and
        :class:`InferenceUnavailable` for one that does not answer, :class:`RegistryReadOnly` when the registry
        cannot be changed (with the setting, before any request). Adding a registered URL changes nothing but its
        credentials; one registered exactly as written is not written again.
        """
        normalized = normalize_url(url)
        shown = self._client.shown_url(normalized)
        if self._settings.url_registry_read_only and normalized not in await self._registered():
            raise self._read_only()  # before any request: a refused change contacts no host
        if normalized != BUILTIN_URL:
            try:
                await self._client.models(shown)
            except InferenceUnavailable as error:
                raise InferenceUnavailable(f"cannot register {shown}: it does not answer ({error})") from None
            except InferenceRejected as error:
                raise InvalidConfiguration([f"cannot register {shown}: not an inference API ({error})"]) from None
        if normalized in await self._registered():
            return shown  # registered exactly as written: nothing to write (a read-only registry answers too)
        async with self._update() as urls:
            position = next((i for i, known in enumerate(urls) if redact_url(known) == shown), None)
            if position is None:
                urls.append(normalized)
            else:
                urls[position] = normalized
        await self.refresh(known_too=False)
        return shown

    async def remove(self, url: str) -> bool:
        """Unregister ``url`` (as written or as shown, ``http://***@host/``); False if it was not registered.
        Raises :class:`RegistryReadOnly` when the registry cannot be changed."""
        shown = redact_url(normalize_url(url))
        if self._settings.url_registry_read_only:
            raise self._read_only()
        async with self._update() as urls:
            found = any(redact_url(registered) == shown for registered in urls)
            urls[:] = [registered for registered in urls if redact_url(registered) != shown]
        await self.refresh(known_too=False)
        return found

    async def remove_all(self) -> None:
        """Unregister every URL (``builtin`` too): the file then lists none."""
        if self._settings.url_registry_read_only:
            raise self._read_only()
        async with self._update() as urls:
            urls.clear()
        await self.refresh(known_too=False)

    async def refresh(self, *, known_too: bool = True) -> Capabilities:
        """Re-read the file and rediscover its URLs (only the new ones unless ``known_too``).

        A URL that does not answer keeps its last known models and is retried at the next refresh.
        """
        async with self._refresh_lock:
            urls = self._shown(await asyncio.to_thread(read_urls, self._path))
            previous = {service.url: service for service in self._capabilities.services}
            services = await asyncio.gather(
                *(
                    self._discover(url, previous.get(url))
                    if known_too or url not in previous or previous[url].models is None
                    else _same(previous[url])
                    for url in urls
                )
            )
            self._capabilities = Capabilities(
                services=tuple(services),
                builtin=self._builtin,
                techniques=tuple(self._techniques()),
                remote_builtin_models=self._remote_builtin_models,
            )
            return self._capabilities

    async def _registered(self) -> tuple[str, ...]:
        return await asyncio.to_thread(read_urls, self._path)

    def _read_only(self, cause: OSError | None = None) -> RegistryReadOnly:
        where = f"the url registry {self._path.absolute()}"
        why = (
            f"cannot be written ({cause.strerror}): it is read-only in this deployment"
            if cause is not None
            else "is read-only in this deployment (inference.url_registry_read_only)"
        )
        return RegistryReadOnly(
            f"{where} {why}; edit the file where it is managed (on Kubernetes: the anonymizer-files ConfigMap), "
            f"it is read again within {self._settings.refresh_interval_s:g} s"
        )

    def _shown(self, urls: Sequence[str]) -> tuple[str, ...]:
        """The registered URLs as shown (the client keeps their credentials), without duplicates."""
        return tuple(dict.fromkeys(self._client.shown_url(url) for url in urls))

    async def _discover(self, url: str, previous: ServiceInfo | None) -> ServiceInfo:
        if url == BUILTIN_URL:
            return self._builtin
        try:
            models = await self._client.describe(url)
        except (InferenceUnavailable, InferenceRejected) as error:
            if previous is None or previous.error is None:
                log.warning("inference service %s does not answer discovery, will retry: %s", url, error)
            return ServiceInfo(url, previous.models if previous else None, str(error))
        if previous is not None and previous.error is not None:
            log.info("inference service %s answers again: %d model(s)", url, len(models))
        return ServiceInfo(url, models)

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except (InvalidConfiguration, OSError) as error:
                log.error("inference URL registry not refreshed, will retry: %s", error)
            self._discovered.set()
            failing = any(service.models is None or service.error for service in self._capabilities.services)
            interval = self._settings.refresh_interval_s
            await asyncio.sleep(min(interval, self._settings.probe_interval_s) if failing else interval)

    @contextlib.asynccontextmanager
    async def _update(self) -> AsyncIterator[list[str]]:
        """Yield the file's current URLs for editing, then write them atomically, all under both locks.

        Raises :class:`RegistryReadOnly` when the file or its lock cannot be written (read-only file system, no
        permission): the file is then unchanged.
        """
        async with self._lock:
            try:
                lock_file = await asyncio.to_thread(_lock, self._path)
            except OSError as error:
                raise self._read_only_or(error) from None
            try:
                urls = list(await asyncio.to_thread(read_urls, self._path))
                yield urls
                try:
                    await asyncio.to_thread(write_urls, self._path, urls)
                except OSError as error:
                    raise self._read_only_or(error) from None
            finally:
                lock_file.close()  # closing releases the flock

    def _read_only_or(self, error: OSError) -> OSError | RegistryReadOnly:
        return self._read_only(error) if error.errno in _READ_ONLY_ERRNOS else error


async def _same(service: ServiceInfo) -> ServiceInfo:
    return service


def read_urls(path: Path) -> tuple[str, ...]:
    """The URLs in ``path``, normalised and without duplicates; a missing file gives the embedded default.

    Raises :class:`InvalidConfiguration` for a file that is not a valid URL configuration.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return DEFAULT_URLS
    try:
        configuration = UrlConfiguration.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError) as error:
        raise InvalidConfiguration([f"{path} is not a valid URL configuration: {redact_url(str(error))}"]) from None
    return tuple(dict.fromkeys(normalize_url(url) for url in configuration.urls))


def write_urls(path: Path, urls: Sequence[str]) -> None:
    """Replace ``path`` atomically: readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = orjson.dumps(UrlConfiguration(urls=list(urls)).model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", delete=False) as temporary:
        temporary.write(body + b"\n")
        temporary.flush()
        os.fsync(temporary.fileno())
    try:
        os.replace(temporary.name, path)
    except OSError:
        os.unlink(temporary.name)
        raise


def _lock(path: Path) -> IO[bytes]:
    """An exclusive lock on ``<path>.lock`` held until the returned file is closed (other processes wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path.with_name(path.name + ".lock"), "ab")  # noqa: SIM115 - closed by the caller
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    except OSError:
        handle.close()
        raise
    return handle

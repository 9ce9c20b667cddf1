"""The Python API: anonymize numpy arrays or encoded images in your own program, synchronously or with asyncio.

``Anonymizer`` (blocking calls) runs an :class:`AsyncAnonymizer` on an event loop of its own, in a thread it
owns, so the models load once and any thread (a notebook's too, whose loop is already running) may call it.
Both open the built-in models (and the registered inference URLs) on entering ``with`` and close them on exit;
constructing one only checks its arguments.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeAlias, TypeVar, overload

import numpy as np
import numpy.typing as npt
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from processor.configuration import check_techniques, default_configuration, load_configuration, parse_configuration
from processor.errors import TransientError
from processor.frames import BgrImage, Frame
from processor.inference.router import InferenceRouter
from processor.localizers import open_localizer
from processor.media import decode
from processor.pipeline import anonymize_image, anonymize_pixels, detect_regions, pixel_frame
from processor.settings import Settings
from schemas.config import UserConfiguration
from schemas.results import FoundRegion, FrameResult

ImageT = TypeVar("ImageT", bytes, npt.NDArray[np.uint8])
T = TypeVar("T")

ConfigurationSource: TypeAlias = UserConfiguration | Mapping[str, Any] | str | os.PathLike[str]
"""A validated configuration, its JSON object as a dict, or the path of a JSON file (a str is a path)."""


class AnonymizerClosed(RuntimeError):
    """The anonymizer was used before ``with`` opened it, or after it was closed."""


@dataclass(frozen=True, slots=True)
class Anonymized(Generic[ImageT]):
    """An anonymized image, of the kind it was given (array in, new array out; bytes in, bytes out, same
    format), and the record of what was found and hidden."""

    image: ImageT
    result: FrameResult
    content_type: str | None  # of the bytes ("image/jpeg", ...); None for an array

    @property
    def regions(self) -> list[FoundRegion]:
        """The hidden regions: label, box (left, top, right, bottom, pixels) and confidence."""
        return self.result.regions

    @property
    def counts(self) -> dict[str, int]:
        """Regions hidden per label."""
        return self.result.counts


@dataclass(frozen=True, slots=True)
class Detection:
    """What :meth:`AsyncAnonymizer.detect` found: the regions anonymizing would hide, nothing hidden."""

    regions: list[FoundRegion]
    width: int
    height: int

    @property
    def counts(self) -> dict[str, int]:
        """Regions found per label."""
        return dict(Counter(region.label for region in self.regions))


class ExplicitSettings(Settings):
    """Settings from the values given only: a library does not read ``ANONYMIZER_*`` variables unless asked
    (pass ``Settings()`` for that, as the CLI does)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def resolve_configuration(source: ConfigurationSource | None) -> UserConfiguration:
    """Validate a configuration once; None is the embedded default (faces and plates, built-in detectors).
    Raises InvalidConfiguration listing every problem."""
    if source is None:
        return default_configuration()
    if isinstance(source, UserConfiguration):
        check_techniques(source)
        return source
    if isinstance(source, Mapping):
        return parse_configuration(dict(source))
    if isinstance(source, str | os.PathLike):
        return load_configuration(Path(source))
    raise TypeError(
        f"configuration must be a UserConfiguration, a dict or the path of a JSON file, got {type(source).__name__}"
    )


class AsyncAnonymizer:
    """Anonymizes images with the built-in detectors (and the registered inference URLs), in asyncio code::

        async with AsyncAnonymizer() as anonymizer:
            result = await anonymizer.anonymize(image)

    Calls may run concurrently; use it on the event loop that opened it.

    :param settings: ``Settings(...)``, or a dict of sections (``{"output": {"jpeg_quality": 90}}``); None =
        the documented defaults. Environment variables are read only by ``Settings()`` itself.
    :param configuration: what to hide unless a call says otherwise (see :func:`resolve_configuration`).
    """

    def __init__(
        self, settings: Settings | Mapping[str, Any] | None = None, *, configuration: ConfigurationSource | None = None
    ) -> None:
        if settings is None or isinstance(settings, Mapping):
            settings = ExplicitSettings.model_validate(dict(settings or {}))
        elif not isinstance(settings, Settings):
            raise TypeError(f"settings must be a Settings or a dict, got {type(settings).__name__}")
        self._settings = settings
        self._configuration = resolve_configuration(configuration)
        self._stack: contextlib.AsyncExitStack | None = None
        self._localizer: InferenceRouter | None = None
        self._closed = False

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def closed(self) -> bool:
        """Whether it was closed (or failed to open): it cannot be opened again."""
        return self._closed

    @property
    def configuration(self) -> UserConfiguration:
        """The configuration used by calls that give none."""
        return self._configuration

    async def __aenter__(self) -> Self:
        if self._closed or self._stack is not None:
            raise AnonymizerClosed("an anonymizer is opened once; make a new one")
        stack = contextlib.AsyncExitStack()
        try:
            localizer = await stack.enter_async_context(open_localizer(self._settings))
            _check_routes(localizer, self._configuration)
        except BaseException:
            await stack.aclose()
            self._closed = True
            raise
        self._stack, self._localizer = stack, localizer
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the models and HTTP clients; later calls raise AnonymizerClosed. Closing twice is harmless."""
        self._closed = True
        self._localizer = None
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    @overload
    async def anonymize(
        self, image: bytes, configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Anonymized[bytes]: ...

    @overload
    async def anonymize(
        self, image: npt.NDArray[np.uint8], configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Anonymized[npt.NDArray[np.uint8]]: ...

    async def anonymize(
        self, image: bytes | BgrImage, configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Anonymized[bytes] | Anonymized[BgrImage]:
        """Hide what ``configuration`` (default: the anonymizer's) names in ``image``.

        :param image: an H×W×3 uint8 array, BGR as OpenCV reads it (never written to: the answer is a new
            array), or an encoded image (JPEG, PNG, WebP, BMP, TIFF), answered in the same format.
        :param rgb: the array is RGB (Pillow, scikit-image, matplotlib); the answer is RGB too.
        :raises: PermanentError subclasses (ImageUndecodable: not an image, grey or 4-channel or not uint8;
            ImageTooLarge; InvalidConfiguration; UnknownLabel, ...), TransientError when an inference URL is
            unavailable, AnonymizerClosed when not open.
        """
        return await self._anonymize(image, configuration, rgb)

    async def _anonymize(
        self, image: bytes | BgrImage, configuration: ConfigurationSource | None, rgb: bool
    ) -> Anonymized[bytes] | Anonymized[BgrImage]:
        localizer, chosen = self._open(configuration)
        settings = self._settings
        if isinstance(image, np.ndarray):
            upload = localizer.needs_encoded_frames(chosen.sensitive_info)
            done = await anonymize_pixels(
                image, chosen, localizer, output=settings.output, limits=settings.limits, rgb=rgb, upload=upload
            )
            return Anonymized(done.pixels, done.result, None)
        data = _encoded(image, rgb)
        encoded = await anonymize_image(data, chosen, localizer, output=settings.output, limits=settings.limits)
        return Anonymized(encoded.data, encoded.result, encoded.content_type)

    async def detect(
        self, image: bytes | BgrImage, configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Detection:
        """The regions :meth:`anonymize` would hide (same arguments, same errors); nothing is hidden."""
        localizer, chosen = self._open(configuration)
        limits = self._settings.limits
        frame: Frame
        upload = localizer.needs_encoded_frames(chosen.sensitive_info)
        if isinstance(image, np.ndarray):
            quality = self._settings.output.jpeg_quality if upload else None
            frame = await asyncio.to_thread(pixel_frame, image, limits.max_pixels, rgb=rgb, upload_quality=quality)
        else:
            frame = await asyncio.to_thread(decode, _encoded(image, rgb), limits.max_pixels, upload=upload)
        regions = await detect_regions(frame, chosen, localizer, output=self._settings.output)
        return Detection(regions, frame.width, frame.height)

    def _open(self, configuration: ConfigurationSource | None) -> tuple[InferenceRouter, UserConfiguration]:
        if self._localizer is None:
            raise AnonymizerClosed(
                "the anonymizer is closed" if self._closed else "the anonymizer is not open: use it in a with block"
            )
        chosen = self._configuration if configuration is None else resolve_configuration(configuration)
        return self._localizer, chosen


class Anonymizer:
    """The blocking twin of :class:`AsyncAnonymizer` (same arguments, same methods, same errors)::

        with Anonymizer() as anonymizer:
            result = anonymizer.anonymize(image)

    Its event loop runs in a thread of its own, so calls may come from any thread, several at once; ``close``
    (or leaving ``with``) waits for the calls in progress, then closes the models and the thread.
    """

    def __init__(
        self, settings: Settings | Mapping[str, Any] | None = None, *, configuration: ConfigurationSource | None = None
    ) -> None:
        self._anonymizer = AsyncAnonymizer(settings, configuration=configuration)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._calls: set[concurrent.futures.Future[Any]] = set()
        self._closed = False

    @property
    def settings(self) -> Settings:
        return self._anonymizer.settings

    @property
    def configuration(self) -> UserConfiguration:
        return self._anonymizer.configuration

    def __enter__(self) -> Self:
        with self._lock:
            if self._loop is not None or self._closed:
                raise AnonymizerClosed("an anonymizer is opened once; make a new one")
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="anonymizer-loop", daemon=True)
            thread.start()
            opening = asyncio.run_coroutine_threadsafe(self._anonymizer.__aenter__(), loop)
            try:
                opening.result()
            except BaseException:
                self._closed = True
                opening.cancel()  # interrupted: the opening closes what it opened
                concurrent.futures.wait([opening])
                _stop(loop, thread)
                raise
            self._loop, self._thread = loop, thread
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the calls in progress, close the models, stop the thread. Closing twice is harmless."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            self._closed = True
            calls = set(self._calls)
        if loop is None or thread is None:
            return
        concurrent.futures.wait(calls)
        try:
            asyncio.run_coroutine_threadsafe(self._anonymizer.aclose(), loop).result()
        finally:
            _stop(loop, thread)

    @overload
    def anonymize(
        self, image: bytes, configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Anonymized[bytes]: ...

    @overload
    def anonymize(
        self, image: npt.NDArray[np.uint8], configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Anonymized[npt.NDArray[np.uint8]]: ...

    def anonymize(
        self, image: bytes | BgrImage, configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Anonymized[bytes] | Anonymized[BgrImage]:
        """See :meth:`AsyncAnonymizer.anonymize`."""
        return self._run(self._anonymizer._anonymize(image, configuration, rgb))

    def detect(
        self, image: bytes | BgrImage, configuration: ConfigurationSource | None = None, *, rgb: bool = False
    ) -> Detection:
        """See :meth:`AsyncAnonymizer.detect`."""
        return self._run(self._anonymizer.detect(image, configuration, rgb=rgb))

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                call.close()
                raise AnonymizerClosed(
                    "the anonymizer is closed" if self._closed else "the anonymizer is not open: use it in a with block"
                )
            future = asyncio.run_coroutine_threadsafe(call, self._loop)
            self._calls.add(future)
        future.add_done_callback(self._forget)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # interrupted (Ctrl-C): stop the work too; no effect once it is done
            raise

    def _forget(self, call: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._calls.discard(call)


def _check_routes(localizer: InferenceRouter, configuration: UserConfiguration) -> None:
    """Unknown models and labels of the default configuration fail at opening rather than at the first image;
    a service not reached yet is left for the calls to report."""
    for entry in configuration.sensitive_info:
        with contextlib.suppress(TransientError):
            localizer.route(entry)


def _encoded(image: object, rgb: bool) -> bytes:
    if not isinstance(image, bytes | bytearray | memoryview):
        raise TypeError(
            f"image must be a numpy array (H×W×3 uint8, BGR) or encoded image bytes, got {type(image).__name__}"
            + ("; read a file with Path(...).read_bytes()" if isinstance(image, str | os.PathLike) else "")
        )
    if rgb:
        raise TypeError("rgb applies to arrays only: encoded images carry their own channel order")
    return bytes(image)


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Join the loop's worker threads (``asyncio.to_thread``), then stop and close the loop and its thread."""
    asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


__all__ = [
    "Anonymized",
    "Anonymizer",
    "AnonymizerClosed",
    "AsyncAnonymizer",
    "ConfigurationSource",
    "Detection",
    "ExplicitSettings",
    "resolve_configuration",
]

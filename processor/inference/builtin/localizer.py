"""The built-in models as a :class:`processor.inference.base.Localizer`: model calls run in a bounded thread pool,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Self, TypeVar

from processor.frames import Frame, Localization
from processor.inference.builtin.catalog import check_label
from processor.inference.builtin.models import BuiltinModels
from processor.settings import BuiltinSettings
from schemas.config import SensitiveInfo

T = TypeVar("T")


class BuiltinLocalizer:
    """Finds faces, plates and persons with the bundled models, and what the custom models find, at most
    ``options.workers`` frames at once.

    Owns its worker threads: use ``async with BuiltinLocalizer(...) as localizer:``; leaving the block waits
    for running model calls and stops the threads. Models load on first use, or at :meth:`warm_up`.
    ``models`` gives the sync calls (catalog, detection, segmentation) to code that runs its own threads.

    Keep ``workers x onnx_threads`` at most the number of cores: more only adds contention.
    """

    def __init__(self, options: BuiltinSettings | None = None) -> None:
        options = options or BuiltinSettings()
        self.models = BuiltinModels(options)
        self._max_workers = options.workers
        self._executor: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Self:
        self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="builtin-model")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def warm_up(self) -> None:
        """Load every model and run it once."""
        await self._run(self.models.warm_up)

    def needs_encoded_frames(self, entries: Sequence[SensitiveInfo]) -> bool:
        return False  # the models read pixels only

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        """Boxes (and for segmentation entries the class mask) of ``entry`` in ``frame``, in its pixels.

        Raises :class:`processor.errors.UnknownModel`, :class:`processor.errors.UnknownLabel` and
        :class:`processor.errors.InvalidConfiguration` (segmentation asked of a detection model).
        """
        check_label(self.models.model_info(entry.model_name), entry.class_name)  # bad entries fail without a thread hop
        return await self._run(functools.partial(self.models.localize, frame.pixels, entry))

    async def _run(self, call: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("BuiltinLocalizer is not open: use `async with BuiltinLocalizer(...)`")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

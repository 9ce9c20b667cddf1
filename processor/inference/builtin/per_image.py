"""One result per live image, shared by the models that need the same stage of it.

The faces (head crops of far persons) and the plate reader (vehicles) both need NanoDet's stage pass over the same
frame, usually from two worker threads at once: the first caller computes it, the other waits and takes the same
result. An entry lives as long as its image (a weak reference): nothing here keeps a frame's pixels alive.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from processor.frames import BgrImage

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    image: weakref.ref[BgrImage]
    lock: threading.Lock = field(default_factory=threading.Lock)
    value: T | None = None


class PerImage(Generic[T]):
    """``compute(image)`` at most once per image object while it lives; thread-safe."""

    def __init__(self, compute: Callable[[BgrImage], T]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry[T]] = {}

    def get(self, image: BgrImage) -> T:
        key = id(image)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.image() is not image:  # an id is reused once its image is freed
                entry = _Entry(weakref.ref(image, functools.partial(self._forget, key)))
                self._entries[key] = entry
        with entry.lock:
            if entry.value is None:
                entry.value = self._compute(image)
            return entry.value

    def __len__(self) -> int:
        return len(self._entries)

    def _forget(self, key: int, _: weakref.ref[BgrImage]) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.image() is None:
                del self._entries[key]

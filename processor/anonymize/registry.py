"""Technique names → kernels: the built-ins, ``@register_technique`` and plugins from an entry-point group.

A technique is one function ``(patch, degree) -> patch`` (see :mod:`processor.anonymize.techniques`). A plugin
package declares it in its metadata, and it is found on first use, once::

    [project.entry-points."anonymizer.techniques"]
    swirl = "my_package.kernels:swirl"

A plugin that fails to import, is not callable or reuses a taken name is logged and skipped.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

from processor.anonymize import techniques
from processor.errors import InvalidConfiguration
from processor.frames import BgrImage

Technique = Callable[[BgrImage, float], BgrImage]
"""``(patch, degree) -> hidden patch``, same shape and dtype. A registered technique or plugin may change ``patch``
in place and return it: the registry hands it a copy when the region is not to be hidden whole (an ellipse, a
mask, overlapping boxes). The built-ins handle that themselves (see :mod:`processor.anonymize.techniques`)."""

ENTRY_POINT_GROUP = "anonymizer.techniques"

_SOLID = re.compile(r"solid:#?([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})")
"""``solid:RRGGBB``: a flat colour of the user's choice (the one technique with a parameter in its name)."""

BUILTIN_TECHNIQUES: Mapping[str, Technique] = {
    "blackening": techniques.blacken,
    "blurring": techniques.blur,
    "filling": techniques.fill,
    "pixelating": techniques.pixelate,
}

logger = logging.getLogger(__name__)


class TechniqueRegistry:
    """Names → techniques; plugins of ``group`` are loaded on the first lookup (thread-safe: kernels run in threads).

    ``builtins`` must leave a read-only patch unchanged; every other technique is wrapped to work on a copy then.
    """

    def __init__(self, builtins: Mapping[str, Technique], group: str = ENTRY_POINT_GROUP) -> None:
        self._techniques = dict(builtins)
        self._group = group
        self._plugins_loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, technique: Technique) -> None:
        """Raises ValueError if ``name`` is taken."""
        with self._lock:
            if name in self._techniques:
                raise ValueError(f"anonymization technique {name!r} is already registered")
            self._techniques[name] = _on_copy(technique)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._techniques)

    def get(self, name: str) -> Technique:
        """Raises InvalidConfiguration naming the unknown technique and listing the known ones."""
        self._load_plugins()
        technique = self._techniques.get(name) or _solid(name)
        if technique is None:
            known = ", ".join([*sorted(self._techniques), "solid:RRGGBB"])
            raise InvalidConfiguration([f"unknown anonymization technique {name!r} (known: {known})"])
        return technique

    def knows(self, name: str) -> bool:
        self._load_plugins()
        return name in self._techniques or _solid(name) is not None

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            for entry in entry_points(group=self._group):
                if entry.name in self._techniques:
                    logger.warning("technique plugin %s = %s skipped: the name is taken", entry.name, entry.value)
                    continue
                try:
                    loaded = entry.load()
                except Exception:  # a plugin's import may raise anything; it must not stop the service
                    logger.exception("technique plugin %s = %s failed to load; skipped", entry.name, entry.value)
                    continue
                if not callable(loaded):
                    logger.error("technique plugin %s = %s is not callable; skipped", entry.name, entry.value)
                    continue
                self._techniques[entry.name] = _on_copy(loaded)
            self._plugins_loaded = True


def _solid(name: str) -> Technique | None:
    match = _SOLID.fullmatch(name)
    if match is None:
        return None
    red, green, blue = (int(part, 16) for part in match.groups())
    return functools.partial(_paint, colour=(blue, green, red))


def _paint(patch: BgrImage, degree: float, *, colour: tuple[int, int, int]) -> BgrImage:
    return techniques.paint(patch, degree, colour)


def _on_copy(technique: Technique) -> Technique:
    """Let ``technique`` work in place: it gets the patch when the engine lets it be written, else a copy."""

    @functools.wraps(technique)
    def on_copy(patch: BgrImage, degree: float) -> BgrImage:
        return technique(patch if patch.flags.writeable else patch.copy(), degree)

    return on_copy


_registry = TechniqueRegistry(BUILTIN_TECHNIQUES)


def register_technique(name: str) -> Callable[[Technique], Technique]:
    """Decorator: ``@register_technique("swirl")`` over a ``(patch, degree) -> patch`` function."""

    def add(technique: Technique) -> Technique:
        _registry.register(name, technique)
        return technique

    return add


def technique_names() -> list[str]:
    return _registry.names()


def is_technique(name: str) -> bool:
    """A registered name, or ``solid:RRGGBB``."""
    return _registry.knows(name)


def get_technique(name: str) -> Technique:
    """Raises InvalidConfiguration for an unknown name."""
    return _registry.get(name)

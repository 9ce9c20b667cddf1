"""Anonymization stream processor for camera data.

The Python API (:mod:`processor.library`) is re-exported here lazily: ``import processor`` loads no model,
no HTTP client and no server; ``from processor import Anonymizer`` loads the library, still starting nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from processor.library import Anonymized, Anonymizer, AnonymizerClosed, AsyncAnonymizer, Detection

__version__ = "0.1.0"

__all__ = ["Anonymized", "Anonymizer", "AnonymizerClosed", "AsyncAnonymizer", "Detection", "__version__"]

_LIBRARY = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _LIBRARY:
        from processor import library

        return getattr(library, name)
    raise AttributeError(f"module 'processor' has no attribute {name!r}")

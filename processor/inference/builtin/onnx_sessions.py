"""onnxruntime sessions for every ONNX model the project loads (bundled and custom): the same options, and the
execution providers of ``builtin.onnx_providers`` that this machine has, CPU always last as the fallback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"

_warned: set[str] = set()
_warned_lock = threading.Lock()


def usable_providers(wanted: Sequence[str]) -> list[str]:
    """``wanted`` in order, without the providers this onnxruntime build cannot use (one warning per name and
    process), then CPU."""
    available = set(ort.get_available_providers())
    usable = [name for name in dict.fromkeys(wanted) if name in available and name != CPU]
    missing = [name for name in dict.fromkeys(wanted) if name not in available]
    with _warned_lock:
        fresh = [name for name in missing if name not in _warned]
        _warned.update(fresh)
    if fresh:
        log.warning(
            "onnxruntime execution providers not available here, skipped: %s (available: %s); running on CPU",
            ", ".join(fresh),
            ", ".join(sorted(available)),
        )
    return [*usable, CPU]


def open_session(model_path: Path, *, intra_op_threads: int = 1, providers: Sequence[str] = ()) -> ort.InferenceSession:
    """A session of ``model_path``: ``intra_op_threads`` threads per run, sequential, quiet; the first usable of
    ``providers``, CPU for what they do not run."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path), options, providers=usable_providers(providers))

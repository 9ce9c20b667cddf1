"""What a benchmark ran on: CPU model and cores, memory, OS, Python and the versions of the libraries that matter."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

PACKAGES = ("camera-anonymizer", "onnxruntime", "opencv-python-headless", "numpy", "av", "pillow", "aiokafka")


def describe_machine() -> dict[str, Any]:
    """``cpu``, ``logical_cores``, ``usable_cores`` (this process's CPU affinity), ``memory_gib``, ``os``,
    ``python`` and ``packages`` (name → version, ``None`` when not installed)."""
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line for people: CPU, usable of logical cores, memory, OS, Python; package versions."""
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    memory = f"{machine['memory_gib']} GiB" if machine["memory_gib"] is not None else "memory unknown"
    return (
        f"{machine['cpu']}, {machine['usable_cores']} of {machine['logical_cores']} cores, {memory}, "
        f"{machine['os']}, Python {machine['python']}; {packages}"
    )


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith(("model name", "Model", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None

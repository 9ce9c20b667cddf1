"""Benchmark rows (dicts of figures) as aligned text lines, shared by the bench modules and `anonymizer bench`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def format_rows(rows: Sequence[Mapping[str, Any]], key: str, indent: str = "") -> str:
    """One line per row: the ``key`` column, then ``name value`` for every other figure (floats to 2 places)."""
    lines = []
    for row in rows:
        figures = ", ".join(
            f"{name} {value:.2f}" if isinstance(value, float) else f"{name} {value}"
            for name, value in row.items()
            if name != key
        )
        lines.append(f"{indent}{row[key]:<42} {figures}")
    return "\n".join(lines)

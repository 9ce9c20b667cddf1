"""Running the ``anonymizer`` command as users do: a subprocess of this interpreter, output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ANONYMIZER = [sys.executable, "-m", "processor"]


def run_anonymizer(
    *arguments: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``anonymizer ARGUMENTS`` in ``cwd`` with ``env`` added to this environment; never raises on its exit code."""
    return subprocess.run(
        [*ANONYMIZER, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )

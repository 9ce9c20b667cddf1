"""`anonymizer infer` (the built-in models over the inference HTTP contract) as a subprocess on a free port."""

from __future__ import annotations

import contextlib
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.integration.servers import HOST, start_server


@contextlib.contextmanager
def running_infer(log_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yields the server's base URL (``http://127.0.0.1:PORT/``) once ``GET /models`` answers; stops it after.

    :param env: the server's environment (default: this process's).
    """

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "processor", "infer", "--host", HOST, "--port", str(port)]

    def ready(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/models", timeout=1) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    server = start_server("infer", argv, ready, log_dir, timeout_s=60, env=env)
    try:
        yield f"http://{server.address}/"
    finally:
        server.stop()

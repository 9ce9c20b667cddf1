"""The image's HEALTHCHECK, per role: what to probe for the command the container runs (``python -m
processor.healthcheck``; exit 0 healthy, 1 not).

``run`` (with Kafka), ``serve`` and ``infer`` answer ``GET /health`` on their port: ``--port`` if the command
has it, else ``ANONYMIZER_HTTP__PORT``, else the command's default (8080; ``infer`` 8081). The command-line tools
(``image``, ``video``, ``enqueue``, ``bench``) and ``run`` on a local inbox serve nothing: healthy while they run.
The command is read from PID 1's command line (the entry point, or an init such as tini that runs it).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

SERVERS = {"run": 8080, "serve": 8080, "infer": 8081}
TOOLS = frozenset({"image", "video", "enqueue", "bench"})


def probe_url(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The URL to probe for the command line ``argv``, or None when that command serves no HTTP."""
    command = next((argument for argument in argv if argument in SERVERS or argument in TOOLS), None)
    if command not in SERVERS:
        return None
    if command == "run" and not environ.get("ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS"):
        return None  # the local inbox: a batch, no health server
    port = _flag(argv, "--port") or environ.get("ANONYMIZER_HTTP__PORT") or str(SERVERS[command])
    return f"http://127.0.0.1:{int(port)}/health"


def _flag(argv: Sequence[str], name: str) -> str | None:
    for index, argument in enumerate(argv):
        if argument == name and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith(name + "="):
            return argument.split("=", 1)[1]
    return None


def main() -> int:
    argv = Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    url = probe_url(argv, os.environ)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:  # noqa: S310 - a fixed http://127.0.0.1 URL
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

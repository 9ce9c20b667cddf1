"""A TCP proxy in front of a real server, to cut it off: while :meth:`TcpProxy.down` lasts, connections are
refused and the open ones reset, as when a service or its network goes away; after it, traffic flows again to the
same server, whose state is intact (a restarted moto or stub would have forgotten its buckets or models)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        with socket.socket() as probe:  # a fixed port: the proxy must come back where clients look for it
            probe.bind((HOST, 0))
            self.port: int = probe.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def __aenter__(self) -> Self:
        await self._listen()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._stop()

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """Refuse and reset everything inside the block; forward again after it."""
        await self._stop()
        try:
            yield
        finally:
            await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()  # a reset, not a polite close
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(HOST, self._upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        try:
            await asyncio.gather(
                _pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer), return_exceptions=True
            )
        finally:
            self._writers -= {client_writer, upstream_writer}
            for writer in (client_writer, upstream_writer):
                writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()

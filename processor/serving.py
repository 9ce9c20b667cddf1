"""Running until told to stop: SIGINT/SIGTERM as an event, and an aiohttp app served until then."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator

from aiohttp import web

from processor.errors import CannotListen

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event that SIGINT or SIGTERM sets while the block runs (call it inside the running loop)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def listen(runner: web.AppRunner, host: str, port: int) -> None:
    """Start listening on ``host:port``; a port in use or an address not of this machine is a settings problem
    (exit 2), not a traceback."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from error


async def serve_app(app: web.Application, host: str, port: int, banner: str, logger: logging.Logger) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then finish running requests and stop.

    :param banner: logged by ``logger`` once per listening address, ``{url}`` replaced by ``http://host:port/``.
    """
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        with stop_on_signals() as stop:
            await listen(runner, host, port)
            for address in runner.addresses:
                logger.info(banner.format(url="http://{}:{}/".format(*address[:2])))
            await stop.wait()
    finally:
        await runner.cleanup()

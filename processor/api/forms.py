"""Reading request forms within an upload limit: small parts in memory, large files spooled to the request's own
folder (never a shared temporary file).

A field may be a file part or a plain text part (the original API's clients send the configuration as a file,
browsers and curl ``-F name=value`` as text). Parts we do not know are read and dropped, within the same limit.
A body must arrive whole within ``http.body_timeout_s`` (408 after: a slow upload holds no slot for ever), and a
body whose framing is broken (no boundary, truncated, bad part headers) is a 400, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from processor.api.resources import SETTINGS
from processor.errors import ObjectTooLarge

MULTIPART = "multipart/form-data"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Form:
    fields: dict[str, bytes] = field(default_factory=dict)  # parts read into memory
    files: dict[str, Path] = field(default_factory=dict)  # spooled parts: where they were written
    filenames: dict[str, str] = field(default_factory=dict)  # the client's file names, when it sent one


async def read_multipart(
    request: web.Request,
    names: Iterable[str],
    max_bytes: int,
    *,
    spool: Mapping[str, Path] | None = None,
    optional: Iterable[str] = (),
) -> Form:
    """The named parts of a multipart request (all of them must be there), and those of ``optional`` that are.

    :param spool: field name → folder: that part is written to ``folder/upload<suffix>`` (the suffix of the
        client's file name) instead of memory.
    :raises ObjectTooLarge: as soon as the body passes ``max_bytes`` (a declared Content-Length over it is
        refused before reading).
    :raises web.HTTPBadRequest: naming what is missing, or a body that is not multipart or not well framed.
    :raises web.HTTPRequestTimeout: when the body has not arrived within ``http.body_timeout_s``.
    """
    async with _body_deadline(request):
        return await _read_multipart(request, tuple(names), max_bytes, spool or {}, tuple(optional))


async def _read_multipart(
    request: web.Request,
    required: tuple[str, ...],
    max_bytes: int,
    spool: Mapping[str, Path],
    optional: tuple[str, ...],
) -> Form:
    wanted = (*required, *optional)
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes, request.content_length)
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(
            text=f"send a {MULTIPART} body with the field(s) {_names(required)}; got {request.content_type!r}"
        )
    form = Form()
    budget = _Budget(max_bytes)
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            raise web.HTTPBadRequest(text="nested multipart bodies are not supported")
        name = part.name or ""
        taken = name in wanted and name not in form.fields and name not in form.files
        if taken and part.filename:
            form.filenames[name] = part.filename
        if taken and name in spool:
            form.files[name] = await _spool(part, spool[name] / f"upload{_suffix(part.filename)}", budget)
            continue
        data = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            budget.take(len(chunk))
            data.extend(chunk)
        if taken:
            form.fields[name] = bytes(data)
    missing = [name for name in required if name not in form.fields and name not in form.files]
    if missing:
        got = [*form.fields, *form.files]
        raise web.HTTPBadRequest(
            text=f"multipart field(s) {_names(missing)} missing; expected {_names(required)}"
            + (f", got {_names(got)}" if got else "")
        )
    return form


async def read_text_field(request: web.Request, name: str) -> str:
    """One text field of a urlencoded or multipart form; ``HTTPBadRequest`` when it is missing or empty (or the
    form is not well framed), ``HTTPRequestTimeout`` when it is not there within ``http.body_timeout_s``."""
    async with _body_deadline(request):
        form = await request.post()
    value = form.get(name)
    if isinstance(value, web.FileField):
        value = value.file.read().decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value.strip():
        raise web.HTTPBadRequest(text=f"form field {name!r} is missing or empty (send it urlencoded or multipart)")
    return value.strip()


@contextlib.asynccontextmanager
async def _body_deadline(request: web.Request) -> AsyncIterator[None]:
    timeout_s = request.app[SETTINGS].http.body_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        raise web.HTTPRequestTimeout(text=f"the request body did not arrive within {timeout_s:g} s") from None
    except (ValueError, HttpProcessingError) as error:  # aiohttp's multipart reader: boundary, EOF, part headers
        raise web.HTTPBadRequest(text=f"malformed form body: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    message = error.message if isinstance(error, HttpProcessingError) else str(error)
    return message.strip() or type(error).__name__


@dataclass(slots=True)
class _Budget:
    """The bytes a request body may still have."""

    max_bytes: int
    used: int = 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > self.max_bytes:
            raise _too_large(self.max_bytes)


async def _spool(part: BodyPartReader, path: Path, budget: _Budget) -> Path:
    handle: BinaryIO = await asyncio.to_thread(path.open, "xb")
    try:
        while chunk := await part.read_chunk(_CHUNK):
            budget.take(len(chunk))
            await asyncio.to_thread(handle.write, chunk)
    finally:
        await asyncio.to_thread(handle.close)
    return path


def _suffix(filename: str | None) -> str:
    """The file name's suffix if it is a plain one (``.mp4``), else none: a client's name never reaches a path."""
    suffix = PurePosixPath(filename or "").suffix.lower()
    return suffix if suffix[1:].isalnum() and len(suffix) <= 6 else ""


def _too_large(max_bytes: int, declared: int | None = None) -> ObjectTooLarge:
    size = f" ({declared / 1e6:.1f} MB declared)" if declared is not None else ""
    return ObjectTooLarge(
        f"request body is over the upload limit of {max_bytes / 1e6:.1f} MB{size}; send a smaller file or raise "
        "the limit (http.max_upload_bytes for images, http.max_video_upload_bytes for videos)"
    )


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)

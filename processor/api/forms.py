"""Reading request forms within the upload limit, in memory: no temporary files, nothing shared between requests.

A field may be a file part or a plain text part (the original API's clients send the configuration as a file,
browsers and curl ``-F name=value`` as text). Parts we do not know are read and dropped, within the same limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import BodyPartReader, web

from processor.errors import ObjectTooLarge

MULTIPART = "multipart/form-data"


async def read_multipart(request: web.Request, names: Iterable[str], max_bytes: int) -> dict[str, bytes]:
    """The named parts of a multipart request (all of them must be there).

    Raises :class:`ObjectTooLarge` as soon as the body passes ``max_bytes`` (a declared Content-Length over it is
    refused before reading), and ``HTTPBadRequest`` naming what is missing or not multipart.
    """
    wanted = tuple(names)
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes, request.content_length)
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(
            text=f"send a {MULTIPART} body with the field(s) {_names(wanted)}; got {request.content_type!r}"
        )
    fields: dict[str, bytes] = {}
    total = 0
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            raise web.HTTPBadRequest(text="nested multipart bodies are not supported")
        data = bytearray()
        while chunk := await part.read_chunk():
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(max_bytes)
            data.extend(chunk)
        if part.name in wanted and part.name not in fields:
            fields[part.name] = bytes(data)
    missing = [name for name in wanted if name not in fields]
    if missing:
        raise web.HTTPBadRequest(
            text=f"multipart field(s) {_names(missing)} missing; expected {_names(wanted)}"
            + (f", got {_names(fields)}" if fields else "")
        )
    return fields


async def read_text_field(request: web.Request, name: str) -> str:
    """One text field of a urlencoded or multipart form; ``HTTPBadRequest`` when it is missing or empty."""
    form = await request.post()
    value = form.get(name)
    if isinstance(value, web.FileField):
        value = value.file.read().decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value.strip():
        raise web.HTTPBadRequest(text=f"form field {name!r} is missing or empty (send it urlencoded or multipart)")
    return value.strip()


def _too_large(max_bytes: int, declared: int | None = None) -> ObjectTooLarge:
    size = f" ({declared / 1e6:.1f} MB declared)" if declared is not None else ""
    return ObjectTooLarge(
        f"request body is over the upload limit of {max_bytes / 1e6:.1f} MB{size}; "
        "send a smaller file or raise http.max_upload_bytes"
    )


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)

"""The ``{"data", "error", "success"}`` JSON envelope of our HTTP answers, and the middleware that puts errors in it.

Shared by the anonymization API and the inference server (``anonymizer infer``): each decides the status code
(and failure data) of our errors; both answer every failure, aiohttp's own (404, 405, 413) included, in the
envelope with an honest status code, and an unplanned exception as a logged 500 that reveals nothing.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from processor.errors import ProcessorError, TransientError

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class Failure:
    """How an error is answered: status code, ``data``, the ``error`` string (None: the error's own message) and
    extra headers."""

    status: int
    data: Any = None
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


Describe = Callable[[ProcessorError], Failure]


def dump_json(document: Any) -> str:
    """JSON as the original services (FastAPI) wrote it: compact, UTF-8, so that their answers compare byte for byte."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def json_answer(document: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(document, status=status, headers=headers, dumps=dump_json)


def answer(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A success: ``error`` is the empty string, as in the original services' answers."""
    return json_answer({"data": data, "error": "", "success": True}, status, headers)


def failure(status: int, message: str, data: Any = None, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_answer({"data": data, "error": message, "success": False}, status, headers)


def envelope_errors(describe: Describe) -> Middleware:
    """A middleware answering :class:`ProcessorError` as ``describe`` says, and HTTP errors with their status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ProcessorError as error:
            described = describe(error)
            headers = {**(retry_after(error) or {}), **described.headers}
            return failure(described.status, described.message or str(error), described.data, headers)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return failure(error.status, _http_message(request, error), headers=_allow(error))
        except Exception:  # the outermost catch of a request: a bug answers 500 and is logged, the server goes on
            log.exception("%s %s failed", request.method, request.path)
            return failure(500, "internal error")

    return middleware


def _http_message(request: web.Request, error: web.HTTPException) -> str:
    if isinstance(error, web.HTTPNotFound) and error.text == "404: Not Found":
        return f"Not Found: no such endpoint {request.method} {request.path}"
    if isinstance(error, web.HTTPMethodNotAllowed):
        return f"{request.method} is not allowed on {request.path}; allowed: {', '.join(sorted(error.allowed_methods))}"
    return error.text or error.reason


def _allow(error: web.HTTPException) -> dict[str, str] | None:
    allow = error.headers.get("Allow")
    return {"Allow": allow} if allow else None


def retry_after(error: ProcessorError) -> dict[str, str] | None:
    """A ``Retry-After`` header for a transient error that says when to try again."""
    if isinstance(error, TransientError) and error.retry_after_s is not None:
        return {"Retry-After": str(max(1, math.ceil(error.retry_after_s)))}
    return None

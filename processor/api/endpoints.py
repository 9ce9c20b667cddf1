"""An endpoint of the API as data: the handler and what the OpenAPI document says about it (one table, two uses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from schemas.api import Failure

FormType = Literal["multipart/form-data", "application/x-www-form-urlencoded"]


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    description: str
    file: bool = False  # a file part (binary); else a text value
    json_model: type[BaseModel] | None = None  # the text is JSON of this model
    example: Any = None
    required: bool = True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``path`` as the original API spelled it; the variant with (or without) a trailing slash works too.

    :param answer: the model of ``data`` in a JSON success answer; ``None`` for an answer of ``content_types``.
    :param enveloped: False for a success answered as ``answer`` itself, outside the envelope (as the original
        API answered ``/available_methods/``).
    :param errors: the failure status codes it may answer, each with what it means there; each answer is a
        ``failure`` model.
    :param parameters: the ``{name}`` parts of ``path``, each with its description.
    :param status: the status code of a success.
    """

    method: Literal["GET", "POST"]
    path: str
    handler: Handler
    summary: str
    tag: str
    description: str = ""
    form: tuple[FormField, ...] = ()
    form_type: FormType = "application/x-www-form-urlencoded"
    answer: type[BaseModel] | None = None
    enveloped: bool = True
    content_types: tuple[str, ...] = ()  # of a non-JSON answer (an image, the metrics text)
    headers: tuple[tuple[str, str], ...] = ()  # answer headers: name, description
    errors: tuple[tuple[int, str], ...] = ()
    error_headers: tuple[tuple[str, str], ...] = ()  # headers of every failure answer: name, description
    failure: type[BaseModel] = Failure
    parameters: tuple[tuple[str, str], ...] = ()
    status: int = 200

    def route_defs(self) -> list[web.RouteDef]:
        """Both spellings of the path, so that ``/anonymize`` and ``/anonymize/`` reach the same handler."""
        other = self.path.rstrip("/") if self.path.endswith("/") else self.path + "/"
        return [web.route(self.method, path, self.handler) for path in (self.path, other)]

"""The OpenAPI 3.0 document of the API, generated from the route table and the pydantic models of ``schemas``.

OpenAPI 3.0 (not 3.1) because the bundled Swagger UI renders 3.0; pydantic writes JSON Schema 2020-12, so each
schema is translated (``null`` unions → ``nullable``, ``const`` → ``enum``, tuples → arrays, numeric exclusive
bounds → boolean ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from processor import __version__
from processor.api.endpoints import Endpoint, FormField
from schemas.api import Answer

OPENAPI_VERSION = "3.0.3"
_REF = "#/components/schemas/{model}"
_DESCRIPTION = (
    "Hides faces, licence plates, persons and any label of your own inference services in images. "
    "Compatible with the original anonymization API's endpoints and `{data, error, success}` envelope (`error` is "
    '`""` on success); the URL registry endpoints and `/available_methods/` answer the original\'s exact bodies '
    "(the error kind in `X-Anonymizer-Error-Kind`; each URL's state in `GET /urls`). Status codes are honest: "
    "400 bad input, 404 unknown, 409 read-only registry, 413 too large, 422 invalid configuration (every problem "
    "listed in `data.problems`), 502/503 when an inference service fails. Every path also works with (or "
    "without) a trailing slash. Videos that take minutes: submit a job (`POST /jobs/video`), poll it, fetch its "
    "result."
)


def openapi_document(endpoints: Iterable[Endpoint], title: str = "Camera anonymizer API") -> dict[str, Any]:
    """The document for ``endpoints``; every schema they use is in ``components.schemas``."""
    endpoints = tuple(endpoints)
    refs, components = _components(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": __version__, "description": _DESCRIPTION},
        "paths": paths,
        "components": {"schemas": components},
    }


def _components(endpoints: tuple[Endpoint, ...]) -> tuple[dict[type[BaseModel], str], dict[str, Any]]:
    """Each model used by an endpoint → its ``$ref``; and the translated schemas by name."""
    wanted: dict[type[BaseModel], JsonSchemaMode] = {}
    for endpoint in endpoints:
        if endpoint.answer is not None:
            wanted[_success_model(endpoint.answer, endpoint.enveloped)] = "serialization"
        wanted[endpoint.failure] = "serialization"
        for field in endpoint.form:
            if field.json_model is not None:
                wanted[field.json_model] = "validation"
    keys, document = models_json_schema(list(wanted.items()), ref_template=_REF)
    refs = {model: keys[(model, mode)]["$ref"] for model, mode in wanted.items()}
    schemas = {name: to_openapi30(schema) for name, schema in document.get("$defs", {}).items()}
    return refs, dict(sorted(schemas.items()))


def _success_model(answer: type[BaseModel], enveloped: bool) -> type[BaseModel]:
    """``Answer[answer]`` (pydantic caches parametrised models, so every call gives the same class), or ``answer``
    itself for an endpoint that answers outside the envelope."""
    return Answer.__class_getitem__(answer) if enveloped else answer  # type: ignore[return-value]


def _operation(endpoint: Endpoint, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": {str(endpoint.status): _success(endpoint, refs)},
    }
    if endpoint.parameters:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "description": meaning, "schema": {"type": "string"}}
            for name, meaning in endpoint.parameters
        ]
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.form:
        operation["requestBody"] = _request_body(endpoint, refs)
    for status, meaning in endpoint.errors:
        operation["responses"][str(status)] = {
            "description": meaning,
            "content": {"application/json": {"schema": {"$ref": refs[endpoint.failure]}}},
            **_headers(endpoint.error_headers),
        }
    return operation


def _headers(headers: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    if not headers:
        return {}
    return {"headers": {name: {"description": meaning, "schema": {"type": "string"}} for name, meaning in headers}}


def _success(endpoint: Endpoint, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": "success"}
    if endpoint.answer is not None:
        ref = refs[_success_model(endpoint.answer, endpoint.enveloped)]
        response["content"] = {"application/json": {"schema": {"$ref": ref}}}
    else:
        response["content"] = {
            content_type: {"schema": {"type": "string"} if content_type.startswith("text/") else _BINARY}
            for content_type in endpoint.content_types
        }
    return {**response, **_headers(endpoint.headers)}


_BINARY = {"type": "string", "format": "binary"}


def _request_body(endpoint: Endpoint, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    media: dict[str, Any] = {
        "schema": {
            "type": "object",
            "required": [field.name for field in endpoint.form if field.required],
            "properties": {field.name: _field_schema(field, refs) for field in endpoint.form},
        }
    }
    encoding = {field.name: {"contentType": "application/json"} for field in endpoint.form if field.json_model}
    if encoding:
        media["encoding"] = encoding
    return {"required": True, "content": {endpoint.form_type: media}}


def _field_schema(field: FormField, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    if field.json_model is not None:
        schema: dict[str, Any] = {"allOf": [{"$ref": refs[field.json_model]}], "description": field.description}
    elif field.file:
        schema = {**_BINARY, "description": field.description}
    else:
        schema = {"type": "string", "description": field.description}
    if field.example is not None:
        schema["example"] = field.example
    return schema


def to_openapi30(schema: Any) -> Any:
    """A pydantic (JSON Schema 2020-12) schema as an OpenAPI 3.0 Schema Object."""
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "null":
        return {"nullable": True, "enum": [None]}
    node = _without_null_options(dict(schema))
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "prefixItems" in node:
        items = node.pop("prefixItems")
        distinct = [item for index, item in enumerate(items) if item not in items[:index]]
        node["items"] = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[inclusive], node[bound] = node[bound], True
    if examples := node.pop("examples", None):
        node["example"] = examples[0]
    if isinstance(node.get("description"), str):
        node["description"] = node["description"].replace("``", "`")
    return _recurse(node)


def _without_null_options(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` → X with ``nullable: true`` (a ``$ref`` is wrapped in ``allOf``)."""
    for union in ("anyOf", "oneOf"):
        options = [option for option in node.get(union, ()) if option.get("type") != "null"]
        if union not in node or len(options) == len(node[union]):
            continue
        node["nullable"] = True
        if len(options) == 1:
            del node[union]
            node.update({"allOf": options} if "$ref" in options[0] else options[0])
        else:
            node[union] = options
    return node


def _recurse(node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("properties"), dict):
        node["properties"] = {name: to_openapi30(child) for name, child in node["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            node[key] = to_openapi30(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            node[key] = [to_openapi30(child) for child in node[key]]
    return node

"""The URL registry and capabilities endpoints: the original API's five, answered in its exact bodies, and ``/urls``.

The original's scripts compare strings and read ``response.json()["face"]``, so ``/set_url``, ``/list_urls``,
``/remove_url``, ``/remove_all_urls`` and ``/available_methods/`` answer the original's bodies, byte for byte:
successes carry its messages and ``"error": ""``, failures ``{"data": null, "error": <its message>, "success":
false}``. Unlike the original (HTTP 200 for everything), the status code is honest; the stable error kind and our
own description travel in the ``X-Anonymizer-Error-Kind`` and ``X-Anonymizer-Error-Detail`` headers. What the
original never said (each URL's state, ``builtin``, whether the registry is read-only) is in ``GET /urls``.
"""

from __future__ import annotations

from aiohttp import web

from processor.api.endpoints import Endpoint, FormField
from processor.api.forms import read_text_field
from processor.api.resources import LOCALIZER, SETTINGS
from processor.api.statuses import KIND_HEADER, describe_error
from processor.envelope import answer, failure, json_answer, retry_after
from processor.errors import (
    InferenceUnavailable,
    InvalidConfiguration,
    OutboundRefused,
    ProcessorError,
    RegistryReadOnly,
    UnregisteredUrl,
)
from processor.inference.builtin.catalog import BUILTIN_URL
from processor.inference.capabilities import normalize_url, redact_url
from schemas.api import AvailableMethods, LabelMethods, Message, Messages, UrlList, Urls, UrlStatus

DETAIL_HEADER = "X-Anonymizer-Error-Detail"

ADDED = "url added successfully"
ALREADY_THERE = "url already exist"
NOT_REACHABLE = "url trying to add is not reachable"
WRONG_FORMAT = "wrong url format. expected format: http://ip:port/"
REMOVED = "url removed successfully"
NOT_PRESENT = "url is not present in config file"
ALL_REMOVED = "all urls removed successfully"
NOT_ALLOWED = "url trying to add is not allowed by the outbound policy"  # the original had no such policy


async def set_url(request: web.Request) -> web.Response:
    registry = request.app[LOCALIZER].registry
    url = await read_text_field(request, "url")
    try:
        shown = redact_url(normalize_url(url))
    except InvalidConfiguration as error:
        return refused(error, WRONG_FORMAT)
    known = shown in registry.urls
    try:
        await registry.add(url)
    except RegistryReadOnly as error:
        return refused(error)
    except OutboundRefused as error:
        return refused(error, NOT_ALLOWED)
    except (InferenceUnavailable, InvalidConfiguration) as error:  # silent, or answers but not as an inference API
        return refused(error, NOT_REACHABLE)
    return answer(ALREADY_THERE if known else ADDED)


async def list_urls(request: web.Request) -> web.Response:
    return answer(UrlList(urls=list(request.app[LOCALIZER].registry.urls)).model_dump(mode="json"))


async def remove_url(request: web.Request) -> web.Response:
    registry = request.app[LOCALIZER].registry
    url = await read_text_field(request, "url")
    try:
        shown = redact_url(normalize_url(url))
    except InvalidConfiguration as error:
        return refused(error, WRONG_FORMAT)
    try:
        found = await registry.remove(url)
    except RegistryReadOnly as error:
        return refused(error)
    if not found:
        problem = f"url {shown!r} is not registered (registered: {', '.join(registry.urls) or 'none'})"
        return refused(UnregisteredUrl(problem), NOT_PRESENT, status=404)
    return answer([REMOVED])


async def remove_all_urls(request: web.Request) -> web.Response:
    try:
        await request.app[LOCALIZER].registry.remove_all()
    except RegistryReadOnly as error:
        return refused(error)
    return answer(ALL_REMOVED)


async def available_methods(request: web.Request) -> web.Response:
    capabilities = request.app[LOCALIZER].registry.capabilities
    techniques = list(capabilities.techniques)
    methods = AvailableMethods(
        {
            label: LabelMethods.model_validate({**types, "technique": techniques})
            for label, types in sorted(capabilities.by_label().items())
        }
    )
    return json_answer(methods.model_dump(mode="json", exclude_none=True))


async def urls(request: web.Request) -> web.Response:
    services = request.app[LOCALIZER].registry.capabilities.services
    listed = [
        UrlStatus(
            url=service.url,
            builtin=service.url == BUILTIN_URL,
            reachable=service.models is not None and service.error is None,
            error=service.error,
            models=None if service.models is None else [model.name for model in service.models],
        )
        for service in services
    ]
    read_only = request.app[SETTINGS].inference.url_registry_read_only
    return answer(Urls(urls=listed, read_only=read_only).model_dump(mode="json"))


def refused(error: ProcessorError, message: str | None = None, *, status: int | None = None) -> web.Response:
    """``error`` in the original's failure body (``data`` null; ``message``, else the error's own), with the status
    of our taxonomy (or ``status``) and the kind and our description in headers."""
    headers = {KIND_HEADER: error.kind, DETAIL_HEADER: _header_text(str(error)), **(retry_after(error) or {})}
    return failure(status or describe_error(error).status, message or str(error), headers=headers)


def _header_text(text: str) -> str:
    """Printable ASCII only (a header value must not break the framing), at most 1000 characters."""
    return "".join(char if " " <= char <= "~" else "?" for char in text)[:1000]


_URL_FIELD = FormField("url", "inference API base URL, e.g. http://host:port/ (or 'builtin')")
_ERROR_HEADERS = (
    (KIND_HEADER, "the error's stable kind (e.g. registry_read_only)"),
    (DETAIL_HEADER, "what exactly went wrong, in our words (credentials shown as ***)"),
)
_READ_ONLY = (409, "the registry is read-only here (inference.url_registry_read_only, or a read-only file)")

REGISTRY_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/set_url",
        set_url,
        "Register an inference API URL",
        "Configuration",
        f"The URL must answer `GET {{url}}models`; it is then discovered (models, types, labels) and listed by "
        f"`/available_methods/`. `data` is `{ADDED}`, or `{ALREADY_THERE}` (nothing changes). Failures, in the "
        f"original's words: `{WRONG_FORMAT}` (422), `{NOT_REACHABLE}` (503: no answer; 422: not an inference API), "
        f"`{NOT_ALLOWED}` (403).",
        form=(_URL_FIELD,),
        answer=Message,
        error_headers=_ERROR_HEADERS,
        errors=(
            (400, "the form field `url` is missing"),
            (403, "the outbound policy refuses the URL's address (loopback, private, metadata)"),
            _READ_ONLY,
            (422, "not an http(s) URL, or not an inference API"),
            (503, "the URL does not answer"),
        ),
    ),
    Endpoint(
        "GET",
        "/list_urls",
        list_urls,
        "List the registered inference URLs",
        "Configuration",
        "In routing order: without an explicit `url`, an entry goes to the first URL serving its model and label. "
        "Each URL's state: `GET /urls`.",
        answer=UrlList,
    ),
    Endpoint(
        "POST",
        "/remove_url",
        remove_url,
        "Unregister an inference URL",
        "Configuration",
        f'`data` is `["{REMOVED}"]`; a URL that is not registered answers 404 `{NOT_PRESENT}`.',
        form=(_URL_FIELD,),
        answer=Messages,
        error_headers=_ERROR_HEADERS,
        errors=(
            (400, "the form field `url` is missing"),
            (404, "the URL is not registered"),
            _READ_ONLY,
            (422, "not an http(s) URL"),
        ),
    ),
    Endpoint(
        "POST",
        "/remove_all_urls",
        remove_all_urls,
        "Unregister every inference URL",
        "Configuration",
        f"`builtin` too; it stays usable as an explicit `url` in a configuration. `data` is `{ALL_REMOVED}`.",
        answer=Message,
        error_headers=_ERROR_HEADERS,
        errors=(_READ_ONLY,),
    ),
    Endpoint(
        "GET",
        "/available_methods/",
        available_methods,
        "What can be hidden, where, and how",
        "Configuration",
        "label → `detection`/`segmentation` → URL → model names, and `technique`: the anonymization techniques. "
        "As the original answered it: the object itself, not in the `{data, error, success}` envelope.",
        answer=AvailableMethods,
        enveloped=False,
    ),
    Endpoint(
        "GET",
        "/urls",
        urls,
        "The registered inference URLs and their state",
        "Configuration",
        "In routing order, each with `builtin`, whether the last discovery reached it, its last problem and its "
        "models; `read_only`: whether the registry endpoints answer 409.",
        answer=Urls,
    ),
)

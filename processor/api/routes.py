"""The endpoints of the original anonymization API: URL registry, capabilities, image and video anonymization.

JSON answers keep the original ``{data, error, success}`` envelope; status codes are honest (see
:mod:`processor.api.statuses`). ``POST /anonymize/`` answers the anonymized image itself, in the input's format
with its content type, and what was done in headers: ``X-Anonymizer-Counts`` (JSON: regions hidden per label),
``X-Anonymizer-Configuration-Hash`` and ``Server-Timing`` (milliseconds per stage).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from processor import metrics
from processor.api.endpoints import Endpoint, FormField
from processor.api.forms import read_multipart, read_text_field
from processor.api.resources import FRAME_SLOTS, LOCALIZER, SETTINGS
from processor.api.video import anonymize_video
from processor.configuration import default_configuration, parse_configuration
from processor.envelope import answer, failure
from processor.inference.capabilities import normalize_url, redact_url
from processor.media import CONTENT_TYPES
from processor.pipeline import anonymize_image
from processor.video.writer import CONTAINERS
from schemas.api import AvailableMethods, FailureDetail, LabelMethods, UrlChange, UrlList, UrlState
from schemas.config import UserConfiguration

_EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}


async def set_url(request: web.Request) -> web.Response:
    registry = request.app[LOCALIZER].registry
    url = await read_text_field(request, "url")
    known = set(registry.urls)
    registered = await registry.add(url)
    message = "url already registered" if registered in known else "url added successfully"
    return answer(UrlChange(url=registered, message=message).model_dump(mode="json"))


async def list_urls(request: web.Request) -> web.Response:
    capabilities = request.app[LOCALIZER].registry.capabilities
    status = {
        service.url: UrlState(reachable=service.models is not None and service.error is None, error=service.error)
        for service in capabilities.services
    }
    return answer(UrlList(urls=list(capabilities.urls), status=status).model_dump(mode="json"))


async def remove_url(request: web.Request) -> web.Response:
    registry = request.app[LOCALIZER].registry
    url = redact_url(normalize_url(await read_text_field(request, "url")))
    if not await registry.remove(url):
        registered = ", ".join(registry.urls) or "none"
        problem = f"url {url!r} is not registered (registered: {registered})"
        return failure(404, problem, FailureDetail(kind="unregistered_url", problems=[problem]).model_dump())
    return answer(UrlChange(url=url, message="url removed successfully").model_dump(mode="json"))


async def remove_all_urls(request: web.Request) -> web.Response:
    await request.app[LOCALIZER].registry.remove_all()
    return answer(UrlList(urls=[]).model_dump(mode="json"))


async def available_methods(request: web.Request) -> web.Response:
    capabilities = request.app[LOCALIZER].registry.capabilities
    techniques = list(capabilities.techniques)
    methods = AvailableMethods(
        {
            label: LabelMethods.model_validate({**types, "technique": techniques})
            for label, types in sorted(capabilities.by_label().items())
        }
    )
    return answer(methods.model_dump(mode="json", exclude_none=True))


async def anonymize(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    form = await read_multipart(request, ("image", "configuration"), settings.http.max_upload_bytes)
    configuration = parse_configuration(form.fields["configuration"])
    async with request.app[FRAME_SLOTS]:
        with metrics.frame_in_flight():
            image = await anonymize_image(
                form.fields["image"],
                configuration,
                request.app[LOCALIZER],
                output=settings.output,
                limits=settings.limits,
            )
    result = image.result
    metrics.observe_frame(result)
    extension = _EXTENSIONS.get(result.format, result.format)
    headers = {
        "X-Anonymizer-Counts": orjson.dumps(result.counts).decode(),
        "X-Anonymizer-Configuration-Hash": result.configuration_hash,
        "Server-Timing": ", ".join(f"{stage};dur={ms:.1f}" for stage, ms in result.timings_ms.items()),
        "Content-Disposition": f'inline; filename="anonymized.{extension}"',
    }
    return web.Response(body=image.data, content_type=image.content_type, headers=headers)


_URL_FIELD = FormField("url", "inference API base URL, e.g. http://host:port/ (or 'builtin')")
_CONFIGURATION_FIELD = FormField(
    "configuration",
    "user configuration: JSON text or a .json file (as the original API's clients send it)",
    json_model=UserConfiguration,
    example=default_configuration().model_dump(mode="json", exclude_none=True),
)
_UPSTREAM_ERRORS = (
    (502, "an inference service answered, but not as the contract says"),
    (503, "an inference service is unavailable (Retry-After may say when to try again)"),
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/set_url",
        set_url,
        "Register an inference API URL",
        "Configuration",
        "The URL must answer `GET {url}models`; it is then discovered (models, types, labels) and listed by "
        "`/available_methods/`. Registering a registered URL changes nothing.",
        form=(_URL_FIELD,),
        answer=UrlChange,
        errors=(
            (400, "the form field `url` is missing"),
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
        "In routing order: without an explicit `url`, an entry goes to the first URL serving its model and label.",
        answer=UrlList,
    ),
    Endpoint(
        "POST",
        "/remove_url",
        remove_url,
        "Unregister an inference URL",
        "Configuration",
        form=(_URL_FIELD,),
        answer=UrlChange,
        errors=((400, "the form field `url` is missing"), (404, "the URL is not registered")),
    ),
    Endpoint(
        "POST",
        "/remove_all_urls",
        remove_all_urls,
        "Unregister every inference URL",
        "Configuration",
        "`builtin` too; it stays usable as an explicit `url` in a configuration.",
        answer=UrlList,
    ),
    Endpoint(
        "GET",
        "/available_methods/",
        available_methods,
        "What can be hidden, where, and how",
        "Configuration",
        "label → `detection`/`segmentation` → URL → model names, and `technique`: the anonymization techniques.",
        answer=AvailableMethods,
    ),
    Endpoint(
        "POST",
        "/anonymize/",
        anonymize,
        "Anonymize an image",
        "Anonymization",
        "Answers the anonymized image in the input's format. `X-Anonymizer-Counts` tells the regions hidden per "
        "label, `Server-Timing` the milliseconds per stage.",
        form=(
            FormField("image", "the image (JPEG, PNG, WebP, BMP or TIFF)", file=True),
            _CONFIGURATION_FIELD,
        ),
        form_type="multipart/form-data",
        content_types=tuple(CONTENT_TYPES.values()),
        headers=(
            ("X-Anonymizer-Counts", "JSON object: regions hidden per label"),
            ("X-Anonymizer-Configuration-Hash", "short hash of the configuration used"),
            ("Server-Timing", "milliseconds per stage: decode, localize, anonymize, encode, total"),
        ),
        errors=(
            (400, "a field is missing, or the image cannot be decoded"),
            (413, "the upload is over http.max_upload_bytes, or the image over limits.max_pixels"),
            (422, "the configuration is invalid (every problem listed), or names an unknown label, model or URL"),
            *_UPSTREAM_ERRORS,
        ),
    ),
    Endpoint(
        "POST",
        "/anonymize_video/",
        anonymize_video,
        "Anonymize a video",
        "Anonymization",
        "Answers the anonymized video (H.264; the container of an .mp4, .m4v, .mov or .mkv upload, else MP4), "
        "audio kept. Regions are hidden in a few neighbouring frames too (temporal smoothing), so a detection "
        "missed for one frame does not show. Videos over `video.max_duration_s` are refused.",
        form=(
            FormField("video", "the video file", file=True),
            _CONFIGURATION_FIELD,
        ),
        form_type="multipart/form-data",
        content_types=tuple(dict.fromkeys(content_type for _, content_type in CONTAINERS.values())),
        headers=(
            ("X-Anonymizer-Counts", "JSON object: regions found per label, summed over frames"),
            ("X-Anonymizer-Frames", "frames written"),
            ("X-Anonymizer-Configuration-Hash", "short hash of the configuration used"),
            ("Server-Timing", "total milliseconds"),
        ),
        errors=(
            (400, "a field is missing, or the video cannot be decoded"),
            (413, "the upload is over http.max_video_upload_bytes, or the video over video.max_duration_s"),
            (422, "the configuration is invalid (every problem listed), or names an unknown label, model or URL"),
            *_UPSTREAM_ERRORS,
        ),
    ),
)

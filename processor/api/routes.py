"""The endpoints of the original anonymization API: image and video anonymization, after those of the URL registry
and capabilities (:mod:`processor.api.registry_endpoints`).

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
from processor.api.forms import read_multipart
from processor.api.registry_endpoints import REGISTRY_ENDPOINTS
from processor.api.resources import FRAME_SLOTS, LOCALIZER, PIXEL_BUDGET, SETTINGS
from processor.api.video import anonymize_video
from processor.configuration import default_configuration, parse_configuration
from processor.media import CONTENT_TYPES
from processor.pipeline import anonymize_image
from processor.video.writer import CONTAINERS
from schemas.config import UserConfiguration

_EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}


async def anonymize(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    form = await read_multipart(request, ("image", "configuration"), settings.http.max_upload_bytes)
    configuration = parse_configuration(form.fields["configuration"])
    with metrics.frame_in_flight():
        image = await anonymize_image(
            form.fields["image"],
            configuration,
            request.app[LOCALIZER],
            output=settings.output,
            limits=settings.limits,
            budget=request.app[PIXEL_BUDGET],
            slots=request.app[FRAME_SLOTS],
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
    *REGISTRY_ENDPOINTS,
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
        "audio kept. Faces and plates are tracked across frames: a detection missed for a frame or two does not "
        "show, and a region is hidden a few frames before and after it was found. Videos over "
        "`video.max_duration_s` are refused.",
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

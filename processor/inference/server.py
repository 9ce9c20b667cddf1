"""``anonymizer infer``: the built-in models (bundled and ``builtin.custom_models``) served over the inference HTTP
contract of the original services.

Routes: ``GET /models``, ``/models/{m}/labels``, ``/models/{m}/config``, ``/models/{m}/palette``, ``/load``,
``/models/{m}/load``; ``POST /models/{m}/predict`` and ``/models/{m}/inference`` with the image as multipart field
``input_data``. JSON answers use the ``{"data", "error", "success"}`` envelope, with honest status codes: 404 for
an unknown model (or a palette of a detection model), 400 for a bad request, 413 for an image over the limits, 500
for a failure of ours. Detection boxes are whole pixels (left/top floored, right/bottom ceiled, so the box covers
what the model found), ``ObjectClassId`` is 0-based, ``confidence`` in percent.

Operations: ``GET /health`` (the process answers), ``GET /ready`` (200 once every bundled model is loaded and ran
once — the server warms them up at start, in its model threads — else 503), ``GET /metrics`` (Prometheus: the
requests by route, method and status, their ``_duration_seconds`` histogram, the requests in flight, the build).
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import math
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from aiohttp import BodyPartReader, web
from PIL import Image

from processor import media
from processor.envelope import Failure, answer, envelope_errors, failure
from processor.errors import (
    ImageTooLarge,
    ImageUndecodable,
    InvalidConfiguration,
    ObjectTooLarge,
    ProcessorError,
    UnknownLabel,
    UnknownModel,
)
from processor.frames import BgrImage, Box
from processor.health import health_routes, observe_requests
from processor.inference.builtin.catalog import ModelInfo
from processor.inference.builtin.models import BuiltinModels
from processor.serving import serve_app
from processor.settings import Settings
from schemas.config import InferenceType

log = logging.getLogger(__name__)

T = TypeVar("T")

MODELS = web.AppKey("models", BuiltinModels)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
WARM_UP = web.AppKey("warm_up", asyncio.Future[None])
LIMITS = web.AppKey("limits", tuple[int, int])  # (max upload bytes, max pixels)

_STATUS: tuple[tuple[type[ProcessorError], int], ...] = (
    (UnknownModel, 404),
    (UnknownLabel, 404),
    (ImageTooLarge, 413),
    (ObjectTooLarge, 413),
    (ImageUndecodable, 400),
    (InvalidConfiguration, 400),
)


def create_inference_app(settings: Settings, models: BuiltinModels | None = None) -> web.Application:
    """The inference service app; model calls run on ``settings.builtin.workers`` threads.

    :param models: the built-in models to serve (default: new ones from ``settings.builtin``, loaded lazily).
    """
    app = web.Application(middlewares=[observe_requests, envelope_errors(_describe)])
    app[MODELS] = models or BuiltinModels(settings.builtin)
    app[LIMITS] = (settings.http.max_upload_bytes, settings.limits.max_pixels)
    app.cleanup_ctx.append(functools.partial(_executor, workers=settings.builtin.workers))

    async def ready() -> tuple[bool, dict[str, Any]]:
        return _models_ready(app)

    app.add_routes(health_routes(ready, "infer"))
    app.add_routes(
        [
            web.get("/models", _list_models),
            web.get("/load", _load_all),
            web.get("/models/{model}/labels", _labels),
            web.get("/models/{model}/config", _config),
            web.get("/models/{model}/palette", _palette),
            web.get("/models/{model}/load", _load_one),
            web.post("/models/{model}/predict", _predict),
            web.post("/models/{model}/inference", _inference),
        ]
    )
    return app


async def serve_inference(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then finish running requests and stop."""
    await serve_app(create_inference_app(settings), host, port, "serving the built-in models on {url}", log)


async def _executor(app: web.Application, *, workers: int) -> AsyncIterator[None]:
    """The model threads; the models start loading (and running once) in one of them at once."""
    with ThreadPoolExecutor(workers, thread_name_prefix="infer-model") as executor:
        app[EXECUTOR] = executor
        app[WARM_UP] = asyncio.get_running_loop().run_in_executor(executor, app[MODELS].warm_up)
        try:
            yield
        finally:
            await asyncio.gather(app[WARM_UP], return_exceptions=True)


def _models_ready(app: web.Application) -> tuple[bool, dict[str, Any]]:
    warm_up = app.get(WARM_UP)
    models = list(app[MODELS].catalog())
    if warm_up is None or not warm_up.done():
        return False, {"models": {"loaded": False, "names": models}}
    if warm_up.cancelled() or warm_up.exception() is not None:
        return False, {"models": {"loaded": False, "names": models, "error": "a model failed to load (see the log)"}}
    return True, {"models": {"loaded": True, "names": models}}


def _describe(error: ProcessorError) -> Failure:
    return Failure(next((code for kind, code in _STATUS if isinstance(error, kind)), 500))


async def _run(request: web.Request, call: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(request.app[EXECUTOR], call)


def _model(request: web.Request) -> ModelInfo:
    return request.app[MODELS].model_info(request.match_info["model"])


async def _list_models(request: web.Request) -> web.Response:
    return answer({"models": list(request.app[MODELS].catalog())})


async def _labels(request: web.Request) -> web.Response:
    return answer(list(_model(request).labels))


async def _config(request: web.Request) -> web.Response:
    return answer(_model(request).config())


async def _palette(request: web.Request) -> web.Response:
    model = _model(request)
    if model.type is not InferenceType.segmentation:
        return failure(404, f"model {model.name!r} is a detection model: it has no palette")
    return answer(list(model.palette))


async def _load_all(request: web.Request) -> web.Response:
    await _run(request, request.app[MODELS].warm_up)
    return answer(list(request.app[MODELS].catalog()))


async def _load_one(request: web.Request) -> web.Response:
    model = _model(request)
    blank = np.zeros((64, 64, 3), np.uint8)
    models = request.app[MODELS]
    run = models.run_segmentation if model.type is InferenceType.segmentation else models.run_detection
    await _run(request, functools.partial(run, model.name, blank))
    return answer([model.name])


async def _predict(request: web.Request) -> web.Response:
    model = _model(request)
    image = await _read_image(request)
    boxes = await _run(request, functools.partial(request.app[MODELS].run_detection, model.name, image))
    return answer({"bounding-boxes": [_bounding_box(model, box) for box in boxes]})


async def _inference(request: web.Request) -> web.Response:
    model = _model(request)
    if model.type is not InferenceType.segmentation:
        return failure(400, f"model {model.name!r} is a detection model: POST models/{model.name}/predict")
    image = await _read_image(request)
    label_map = await _run(request, functools.partial(request.app[MODELS].run_segmentation, model.name, image))
    return web.Response(body=_palette_png(label_map, model.palette), content_type="image/png")


async def _read_image(request: web.Request) -> BgrImage:
    """The multipart field ``input_data``, decoded within the byte and pixel limits."""
    max_bytes, max_pixels = request.app[LIMITS]
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(text="send the image as multipart/form-data field 'input_data'")
    async for part in await request.multipart():
        if isinstance(part, BodyPartReader) and part.name == "input_data":
            data = bytearray()
            while chunk := await part.read_chunk():
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=len(data))
            return media.decode(bytes(data), max_pixels, upload=False).pixels
    raise web.HTTPBadRequest(text="multipart field 'input_data' is missing")


def _bounding_box(model: ModelInfo, box: Box) -> dict[str, Any]:
    return {
        "ObjectClassName": box.label,
        "ObjectClassId": model.labels.index(box.label) if box.label in model.labels else None,
        "confidence": round(box.confidence * 100.0, 2),
        "coordinates": {
            "left": math.floor(box.left),
            "top": math.floor(box.top),
            "right": math.ceil(box.right),
            "bottom": math.ceil(box.bottom),
        },
    }


def _palette_png(label_map: np.ndarray[Any, np.dtype[np.uint8]], palette: tuple[int, ...]) -> bytes:
    height, width = label_map.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(label_map, np.uint8).tobytes())
    image.putpalette(list(palette))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

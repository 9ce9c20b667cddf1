"""Stub inference services over real HTTP, imitating each variant and fault of the original detection/segmentation APIs.

``InferenceStub`` is an async context manager around an ``aiohttp.test_utils.TestServer`` on a free port:

- variants: YOLO (``labels``/``config`` answer ``data: null`` until ``GET /load``), OpenVINO (models as a dict
  name → id, real 404/500 codes) or the original services (handled errors as HTTP 200 + ``success: false``);
  boxes are whatever dicts the test gives (float coordinates, 1-based ids, boxes outside the image);
- settable latency, faults queued for the next requests (``stub.fail_next("status:500", times=2)``) or drawn at
  random for every predict/inference request (``fault_rates={"status:503": 0.2, "slow": 0.1}``, seeded);
- counters: requests per path, requests in flight and the most seen at once (optionally shared by stubs).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import socket
import struct
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import cv2
import numpy as np
import numpy.typing as npt
from aiohttp import BodyPartReader, web
from aiohttp.test_utils import TestServer
from PIL import Image

LabelMap = Callable[[int, int], npt.NDArray[np.uint8]]
"""(height, width) of the uploaded image → the class index of every pixel."""
Detect = Callable[[npt.NDArray[np.uint8]], list[dict[str, Any]]]
"""The uploaded image's stored pixels (decoded ignoring its EXIF orientation, as Pillow or OpenCV services without
the tag do) → "bounding-boxes" items."""


def left_half_person(height: int, width: int) -> npt.NDArray[np.uint8]:
    """Class 1 on the left half of the image, class 0 elsewhere."""
    label_map = np.zeros((height, width), np.uint8)
    label_map[:, : width // 2] = 1
    return label_map


@dataclass
class StubModel:
    name: str
    type: str  # "detection" | "segmentation"
    labels: list[str]
    boxes: list[dict[str, Any]] = field(default_factory=list)  # "bounding-boxes" items, as the service sends them
    label_map: LabelMap = left_half_person
    map_scale: float = 1.0  # the label map's size relative to the input (1.0 = same size, as the contract says)
    detect: Detect | None = None  # when set, the boxes come from running it on each upload, not from ``boxes``


@dataclass
class InFlight:
    """Requests being handled now and the most at once; share one between stubs to count across them."""

    now: int = 0
    most: int = 0

    def enter(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def leave(self) -> None:
        self.now -= 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


HUGE_ANSWER_BYTES = 32 * 1024 * 1024


async def _chunked(request: web.Request, size: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b" " * (1 << 20)
    with contextlib.suppress(ConnectionError):  # the client stops reading once over its limit
        for _ in range(size // len(chunk)):
            await response.write(chunk)
        await response.write_eof()
    return response


class InferenceStub:
    """A fake inference service. ``url`` ends with a slash, like a registered URL.

    :param needs_load: answer ``data: null`` for labels and config until ``GET /load`` is called (YOLO).
    :param unloaded_as_failure: before the load, answer as a fresh YOLOv4 container does: HTTP 200 with
        ``{"data": null, "error": "Model not found", "success": false}``.
    :param models_as_dict: list models as ``{name: id}`` (OpenVINO segmentation).
    :param http_errors: answer unknown models with 404 (OpenVINO) instead of HTTP 200 + ``success: false``.
    :param latency_s: delay before every answer to ``predict``/``inference``.
    :param fault_rates: fault → probability, drawn (seeded by ``fault_seed``) for each predict/inference request
        that has no queued fault; ``injected`` counts the faults drawn.
    :param port: listen on this port (default: a free one).
    """

    def __init__(
        self,
        models: list[StubModel],
        *,
        needs_load: bool = False,
        unloaded_as_failure: bool = False,
        models_as_dict: bool = False,
        http_errors: bool = False,
        latency_s: float = 0.0,
        slow_s: float = 5.0,
        in_flight: InFlight | None = None,
        fault_rates: dict[str, float] | None = None,
        fault_seed: int = 0,
        port: int = 0,
    ) -> None:
        self.models = {model.name: model for model in models}
        self.needs_load = needs_load
        self.loaded = not needs_load
        self.unloaded_as_failure = unloaded_as_failure
        self.models_as_dict = models_as_dict
        self.http_errors = http_errors
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.in_flight = in_flight or InFlight()
        self.requests: Counter[str] = Counter()
        self.uploads: list[tuple[str, str, int]] = []  # (filename, content type, bytes) of each upload
        self.authorizations: list[str] = []  # the Authorization header of each request ("" when none)
        self._faults: deque[str] = deque()
        self.fault_rates = fault_rates or {}
        self._fault_draw = random.Random(fault_seed)
        self.injected: Counter[str] = Counter()
        self._closing = asyncio.Event()
        self._url: str | None = None
        self._server = TestServer(self._app(), host="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``; still known after the stub has stopped."""
        if self._url is None:
            raise RuntimeError("InferenceStub not started")
        return self._url

    def fail_next(self, fault: str, times: int = 1) -> None:
        """Queue faults for the next requests: ``status:<code>``, ``slow``, ``malformed_json``, ``success_false``,
        ``malformed_png``, ``rgb_png``, ``huge`` (a 32 MiB answer that says its length), ``huge_chunked`` (the same
        sent chunked, no length: the client must count), ``reset`` (the connection reset, no answer)."""
        self._faults.extend([fault] * times)

    async def __aenter__(self) -> Self:
        await self._server.start_server()
        self._url = str(self._server.make_url("/"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        await self._server.close()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        app.add_routes(
            [
                web.get("/models", self._models),
                web.get("/load", self._load),
                web.get("/models/{model}/labels", self._labels),
                web.get("/models/{model}/config", self._config),
                web.get("/models/{model}/palette", self._palette),
                web.post("/models/{model}/predict", self._predict),
                web.post("/models/{model}/inference", self._inference),
            ]
        )
        return app

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests[request.path] += 1
        self.authorizations.append(request.headers.get("Authorization", ""))
        self.in_flight.enter()
        try:
            fault = self._faults.popleft() if self._faults else self._drawn_fault(request.path)
            if fault == "slow":
                await self._sleep(self.slow_s)
            elif fault is not None and fault.startswith("status:"):
                status = int(fault.split(":")[1])
                return web.json_response({"data": None, "error": f"injected {status}", "success": False}, status=status)
            elif fault == "malformed_json":
                return web.Response(body=b'{"data": {"bounding-boxes": [', content_type="application/json")
            elif fault == "success_false":
                return web.json_response({"data": None, "error": "model crashed on this image", "success": False})
            elif fault == "malformed_png":
                return web.Response(body=b"\x89PNG\r\n\x1a\n truncated", content_type="image/png")
            elif fault == "rgb_png":
                return web.Response(body=_png(np.zeros((4, 4, 3), np.uint8), "RGB"), content_type="image/png")
            elif fault == "huge":
                return web.Response(body=b" " * HUGE_ANSWER_BYTES, content_type="application/json")
            elif fault == "huge_chunked":
                return await _chunked(request, HUGE_ANSWER_BYTES)
            elif fault == "reset":
                _reset(request)
                return web.Response()  # never sent: the connection is gone
            return await handler(request)
        finally:
            self.in_flight.leave()

    def _drawn_fault(self, path: str) -> str | None:
        if not self.fault_rates or not path.endswith(("/predict", "/inference")):
            return None
        draw = self._fault_draw.random()
        for fault, rate in self.fault_rates.items():
            if draw < rate:
                self.injected[fault] += 1
                return fault
            draw -= rate
        return None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _answer(self, data: Any) -> web.Response:
        return web.json_response({"data": data, "error": None, "success": True})

    def _not_loaded(self) -> web.Response:
        if self.unloaded_as_failure:
            return web.json_response({"data": None, "error": "Model not found", "success": False})
        return self._answer(None)

    def _unknown(self, name: str) -> web.Response:
        message = f"model {name} not found"
        status = 404 if self.http_errors else 200
        return web.json_response({"data": None, "error": message, "success": False}, status=status)

    async def _models(self, request: web.Request) -> web.Response:
        names = list(self.models)
        return self._answer({"models": {name: i for i, name in enumerate(names)} if self.models_as_dict else names})

    async def _load(self, request: web.Request) -> web.Response:
        self.loaded = True
        return self._answer(True)

    async def _labels(self, request: web.Request) -> web.Response:
        model = self.models.get(request.match_info["model"])
        if model is None:
            return self._unknown(request.match_info["model"])
        return self._answer(model.labels) if self.loaded else self._not_loaded()

    async def _config(self, request: web.Request) -> web.Response:
        model = self.models.get(request.match_info["model"])
        if model is None:
            return self._unknown(request.match_info["model"])
        return self._answer({"type": model.type, "framework": "stub"}) if self.loaded else self._not_loaded()

    async def _palette(self, request: web.Request) -> web.Response:
        model = self.models.get(request.match_info["model"])
        if model is None:
            return self._unknown(request.match_info["model"])
        return self._answer([0, 0, 0, 192, 128, 128] + [255] * 3 * (len(model.labels) - 2))

    async def _upload(self, request: web.Request) -> npt.NDArray[np.uint8] | web.Response:
        payload = b""
        async for part in await request.multipart():
            if isinstance(part, BodyPartReader) and part.name == "input_data":
                payload = await part.read()
                self.uploads.append((part.filename or "", part.headers.get("Content-Type", ""), len(payload)))
        if not payload:
            return web.json_response({"data": None, "error": "input_data missing", "success": False}, status=400)
        image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            return web.json_response({"data": None, "error": "not an image", "success": False}, status=400)
        await self._sleep(self.latency_s)
        return np.asarray(image, np.uint8)

    async def _predict(self, request: web.Request) -> web.Response:
        model = self.models.get(request.match_info["model"])
        if model is None:
            return self._unknown(request.match_info["model"])
        image = await self._upload(request)
        if isinstance(image, web.Response):
            return image
        boxes = model.boxes if model.detect is None else await asyncio.to_thread(model.detect, image)
        return self._answer({"bounding-boxes": boxes})

    async def _inference(self, request: web.Request) -> web.Response:
        model = self.models.get(request.match_info["model"])
        if model is None:
            return self._unknown(request.match_info["model"])
        image = await self._upload(request)
        if isinstance(image, web.Response):
            return image
        height, width = (max(1, round(side * model.map_scale)) for side in image.shape[:2])
        return web.Response(body=_png(model.label_map(height, width), "P"), content_type="image/png")


def _reset(request: web.Request) -> None:
    """Abort the request's connection with a TCP reset (SO_LINGER 0), as a crashed service or a proxy does."""
    transport = request.transport
    assert transport is not None
    connection = transport.get_extra_info("socket")
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _png(pixels: npt.NDArray[np.uint8], mode: str) -> bytes:
    height, width = pixels.shape[:2]
    image = Image.frombytes(mode, (width, height), np.ascontiguousarray(pixels).tobytes())
    if mode == "P":
        image.putpalette([0, 0, 0, 192, 128, 128] + [0] * (768 - 6))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

"""A fixed-latency detection service for benchmarks, speaking the original inference API's contract.

It serves one model (``stub_detector``, label ``face``) and answers every ``predict`` with one face box after
``--latency-ms``, without decoding the upload, so it costs the benchmark almost no CPU.

Run: ``python -m processor.bench.stub_inference --port 8500 --latency-ms 100``.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

MODEL = "stub_detector"
LABEL = "face"
BOX = {"left": 700, "top": 300, "right": 1000, "bottom": 700}  # a face-sized box of a 1920×1080 frame


def application(latency_s: float) -> web.Application:
    """The stub's routes: discovery (models, labels, config) and ``predict``."""

    def answer(data: object) -> web.Response:
        return web.json_response({"data": data, "error": None, "success": True})

    async def models(request: web.Request) -> web.Response:
        return answer({"models": [MODEL]})

    async def labels(request: web.Request) -> web.Response:
        return answer([LABEL])

    async def config(request: web.Request) -> web.Response:
        return answer({"type": "detection"})

    async def predict(request: web.Request) -> web.Response:
        await request.read()  # take the upload off the socket, as a real service would
        if latency_s:
            await asyncio.sleep(latency_s)
        box = {"ObjectClassName": LABEL, "ObjectClassId": 0, "confidence": 90, "coordinates": BOX}
        return answer({"bounding-boxes": [box]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(
        [
            web.get("/models", models),
            web.get(f"/models/{MODEL}/labels", labels),
            web.get(f"/models/{MODEL}/config", config),
            web.post(f"/models/{MODEL}/predict", predict),
        ]
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    arguments = parser.parse_args()
    web.run_app(application(arguments.latency_ms / 1000), host=arguments.host, port=arguments.port, print=None)


if __name__ == "__main__":
    main()

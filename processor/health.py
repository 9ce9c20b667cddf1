"""``/health``, ``/ready`` and ``/metrics`` for ``anonymizer serve`` and ``anonymizer run``, and HTTP request metrics.

``/health`` answers 200 while the process serves HTTP at all (liveness). ``/ready`` asks the owner's readiness
callable: 200 when it says ready, else 503, with the callable's details either way (e.g. which inference URLs
answer). ``/metrics`` is :mod:`processor.metrics` in the Prometheus text format, the metrics of the serving role.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from processor import metrics
from processor.envelope import answer, failure
from processor.errors import ProcessorError, TransientError
from processor.inference.builtin.catalog import BUILTIN_URL
from processor.inference.capabilities import Capabilities
from processor.serving import listen
from processor.settings import HttpSettings
from schemas.config import SensitiveInfo, UserConfiguration

log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
"""Says whether the process can do its work now, with details (shown by ``/ready``)."""

HEALTH_PATHS = ("/health", "/ready", "/metrics")


def create_health_app(ready: Readiness) -> web.Application:
    """The health and metrics endpoints alone (what ``anonymizer run`` serves on ``http.host:http.port``)."""
    app = web.Application(middlewares=[observe_requests])
    app.add_routes(health_routes(ready, "run"))
    return app


@contextlib.asynccontextmanager
async def serve_health(http: HttpSettings, ready: Readiness) -> AsyncIterator[tuple[str, int]]:
    """Serve :func:`create_health_app` on ``http.host:http.port`` (port 0: any free one) until the block exits.

    Yields the address listened on. For ``anonymizer run``: enter it in the service's exit stack first, so that
    ``/health`` and ``/metrics`` answer while the rest starts and ``/ready`` says when it has.
    """
    runner = web.AppRunner(create_health_app(ready))
    await runner.setup()
    try:
        await listen(runner, http.host, http.port)
        host, port = runner.addresses[0][:2]
        log.info("health and metrics on http://%s:%s/ (/health, /ready, /metrics)", host, port)
        yield host, port
    finally:
        await runner.cleanup()


def health_routes(ready: Readiness, role: metrics.Role) -> list[web.RouteDef]:
    """The three routes, for an application of the caller's (``anonymizer serve`` adds them to the API, ``anonymizer
    infer`` to the inference server); ``/metrics`` exports the metrics of ``role``."""

    async def readiness(request: web.Request) -> web.Response:
        ok, details = await ready()
        if ok:
            return answer({"ready": True, **details})
        return failure(503, "not ready", {"ready": False, **details})

    async def exposition(request: web.Request) -> web.Response:
        body, content_type = metrics.render(role)
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return [web.get("/health", _alive), web.get("/ready", readiness), web.get("/metrics", exposition)]


def inference_readiness(
    capabilities: Capabilities,
    *,
    builtin: bool,
    configuration: UserConfiguration | None = None,
    is_healthy: Callable[[str], bool] = lambda url: True,
) -> tuple[bool, dict[str, Any]]:
    """Ready when the built-in models are loaded in this process or at least one registered URL answered discovery;
    with ``configuration`` (``run``'s default), also when no entry of it waits for an unavailable service (one never
    reached, whose last discovery failed, or that ``is_healthy`` says is failing now): such a processor could only
    retry. An entry no service serves at all (unknown model or label) is shown, but does not hold readiness back:
    it is a configuration error that events with their own configuration do not share, and being unready would not
    stop it from being dead-lettered."""
    reachable = {service.url: service.models is not None and service.error is None for service in capabilities.services}
    details: dict[str, Any] = {"inference": {"builtin": builtin, "urls": reachable}}
    ready = builtin or any(reachable.values())
    if configuration is not None:
        routes = {
            _entry_name(entry): _route_state(capabilities, entry, is_healthy) for entry in configuration.sensitive_info
        }
        details["inference"]["routes"] = routes
        ready = ready and all(not state.startswith("unavailable") for state in routes.values())
    return ready, details


def _entry_name(entry: SensitiveInfo) -> str:
    return f"{entry.class_name} ({entry.model_name})"


def _route_state(capabilities: Capabilities, entry: SensitiveInfo, is_healthy: Callable[[str], bool]) -> str:
    """The URL serving ``entry`` now, ``unavailable: <why>`` (transient) or ``unroutable: <kind>`` (permanent)."""
    try:
        route = capabilities.route(entry)
    except TransientError as error:
        return f"unavailable: {error.kind}"
    except ProcessorError as error:
        return f"unroutable: {error.kind}"
    if route.url == BUILTIN_URL:
        return route.url
    service = next((service for service in capabilities.services if service.url == route.url), None)
    if (service is not None and service.error is not None) or not is_healthy(route.url):
        return f"unavailable: {route.url} is failing"
    return route.url


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route (the route table's path, ``unmatched`` for unknown paths) and status, its
    duration, and the requests being answered."""
    started = time.perf_counter()
    status = 500
    try:
        with metrics.http_in_flight():
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        metrics.observe_http(_route(request), request.method, status, time.perf_counter() - started)


def _route(request: web.Request) -> str:
    if request.match_info.http_exception is not None:
        return "unmatched"
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    return canonical.rstrip("/") or "/"


async def _alive(request: web.Request) -> web.Response:
    return answer({"alive": True})

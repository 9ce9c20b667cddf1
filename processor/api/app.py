"""``anonymizer serve``: the anonymization API's aiohttp application, with its docs, health and metrics.

Middlewares, outermost first: request metrics, then the bearer tokens (:mod:`processor.api.auth`), then the
envelope (errors → ``{data, error, success}`` with the status of :mod:`processor.api.statuses`). Shared resources
open in ``cleanup_ctx`` (see :mod:`processor.api.resources`); request bodies are capped at
``http.max_upload_bytes`` (413 beyond).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from processor.api.auth import SECURITY_SCHEMES, check_exposure, require_tokens, security_requirements
from processor.api.docs import DOCUMENT, docs_routes
from processor.api.endpoints import Endpoint
from processor.api.job_endpoints import JOB_ENDPOINTS, open_jobs
from processor.api.openapi import openapi_document
from processor.api.resources import LOCALIZER, SETTINGS, open_resources
from processor.api.routes import ENDPOINTS
from processor.api.statuses import describe_error
from processor.envelope import envelope_errors
from processor.health import health_routes, inference_readiness, observe_requests
from processor.serving import serve_app
from processor.settings import Settings
from schemas.api import Alive, NotReady, Readiness

log = logging.getLogger(__name__)

_FAILURE = {"application/json": {"schema": {"$ref": "#/components/schemas/Failure"}}}
_AUTH_ERRORS = (
    ("401", "no bearer token (kind unauthenticated)"),
    ("403", "a token that does not grant this endpoint (kind forbidden; admin_disabled: no admin token set)"),
)


def create_app(settings: Settings) -> web.Application:
    """The API application; its resources open when it starts (``AppRunner.setup``, ``TestServer``).

    Raises :class:`~processor.errors.InsecureSettings` for a non-loopback ``http.host`` without any token.
    """
    check_exposure(settings.http)
    app = web.Application(
        client_max_size=settings.http.max_upload_bytes,
        middlewares=[observe_requests, require_tokens(settings.http), envelope_errors(describe_error)],
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(open_resources)
    app.cleanup_ctx.append(open_jobs)  # after the resources: its workers use the localizer

    async def ready() -> tuple[bool, dict[str, Any]]:
        localizer = app.get(LOCALIZER)
        if localizer is None:
            return False, {"inference": "not started"}
        return inference_readiness(localizer.registry.capabilities, builtin=True)

    endpoints = ENDPOINTS + JOB_ENDPOINTS + _operations(health_routes(ready, "serve"))
    for endpoint in endpoints:
        app.add_routes(endpoint.route_defs())
    app.add_routes(docs_routes())
    app[DOCUMENT] = _secured(openapi_document(endpoints), settings)
    return app


async def serve_api(settings: Settings) -> None:
    """Serve on ``http.host:http.port`` until SIGINT or SIGTERM, then finish running requests and stop."""
    inference = settings.inference
    log.info(
        "inference URL registry: %s (%s)",
        inference.url_configuration.absolute(),
        "read-only: inference.url_registry_read_only" if inference.url_registry_read_only else "changed by /set_url",
    )
    await serve_app(
        create_app(settings), settings.http.host, settings.http.port, "anonymization API on {url} (docs: /docs)", log
    )


def _secured(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The document with the bearer schemes and each operation's requirement (and its 401/403 answers)."""
    document["components"]["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document["paths"].items():
        requirements = security_requirements(path, settings.http)
        for operation in operations.values():
            operation["security"] = requirements
            if requirements:
                for status, meaning in _AUTH_ERRORS:
                    operation["responses"].setdefault(status, {"description": meaning, "content": _FAILURE})
    return document


def _operations(routes: list[web.RouteDef]) -> tuple[Endpoint, ...]:
    """The health routes as endpoints of the route table, so that the OpenAPI document describes them too."""
    described: dict[str, dict[str, Any]] = {
        "/health": {"summary": "Liveness: the process answers", "answer": Alive},
        "/ready": {
            "summary": "Readiness: the built-in models or at least one registered inference URL can serve",
            "answer": Readiness,
            "errors": ((503, "not ready"),),
            "failure": NotReady,
        },
        "/metrics": {"summary": "Prometheus metrics (text format)", "content_types": ("text/plain",)},
    }
    return tuple(
        Endpoint("GET", route.path, route.handler, tag="Operations", **described[route.path]) for route in routes
    )

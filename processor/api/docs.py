"""``/docs``: Swagger UI over ``/openapi.json``, its assets served from the ``swagger-ui-bundle`` package (no CDN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped]
from aiohttp import web

ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
DOCUMENT = web.AppKey("openapi_document", dict[str, Any])

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "../openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


def docs_routes() -> list[web.RouteDef | web.StaticDef]:
    """``/openapi.json``, ``/docs`` (redirected to ``/docs/``, so the page's relative links resolve) and its assets;
    ``/`` redirects to the docs too."""
    return [
        web.get("/", _to_docs),
        web.get("/openapi.json", _document),
        web.get("/docs", _to_docs),
        web.get("/docs/", _page),
        web.static("/docs/assets", ASSETS),
    ]


async def _document(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])


async def _to_docs(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/docs/")


async def _page(request: web.Request) -> web.Response:
    title = request.app[DOCUMENT]["info"]["title"]
    return web.Response(text=_PAGE.format(title=title), content_type="text/html")

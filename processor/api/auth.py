"""Bearer-token access to the API: which scope each path needs, the middleware that checks it, and the refusal to
listen on a network address with nothing protected.

Scopes: ``public`` (``http.public_paths``, by default the probes and the docs), ``admin`` (the URL registry
changes: ``/set_url``, ``/remove_url``, ``/remove_all_urls``) and ``api`` (everything else, unknown paths too).
``http.admin_token`` grants every scope, ``http.api_token`` the ``api`` scope. With no token configured the
``api`` scope is open, which :func:`check_exposure` allows on a non-loopback host only with
``http.allow_unauthenticated``; the ``admin`` scope without an admin token is open on a loopback host only and
answers 403 (``admin_disabled``) elsewhere, whatever else is set.

Answers: no (or a malformed) ``Authorization: Bearer`` header → 401 ``unauthenticated``; a token that does not
grant the scope → 403 ``forbidden``; both in the usual ``{data, error, success}`` envelope.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from processor.envelope import failure
from processor.errors import InsecureSettings
from processor.settings import HttpSettings
from schemas.api import FailureDetail

ADMIN_PATHS = frozenset({"/set_url", "/remove_url", "/remove_all_urls"})
REALM = 'Bearer realm="anonymizer"'
API_SCHEME = "apiToken"
ADMIN_SCHEME = "adminToken"
MIN_TOKEN_LENGTH = 16


class Scope(enum.Enum):
    public = "public"
    api = "api"
    admin = "admin"


def scope_of(path: str, public_paths: frozenset[str]) -> Scope:
    """The scope ``path`` needs; a public path covers its sub-paths (``/docs`` covers ``/docs/assets/…``), but
    ``/`` covers only itself."""
    trimmed = path.rstrip("/") or "/"
    if trimmed in ADMIN_PATHS:
        return Scope.admin
    for public in public_paths:
        root = public.rstrip("/") or "/"
        if trimmed == root or (root != "/" and trimmed.startswith(root + "/")):  # "/" covers itself only
            return Scope.public
    return Scope.api


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address; anything else (``0.0.0.0``, ``::``, a name) may be reached from outside."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(http: HttpSettings) -> None:
    """Raise :class:`InsecureSettings` for a token shorter than :data:`MIN_TOKEN_LENGTH` (a placeholder such as
    the deploy files' ``change-me``), or when ``http.host`` is not loopback, no token is set, and
    ``http.allow_unauthenticated`` does not say that this is wanted."""
    for name, token in (("api_token", http.api_token), ("admin_token", http.admin_token)):
        secret = _secret(token)
        if secret is not None and len(secret) < MIN_TOKEN_LENGTH:
            raise InsecureSettings(
                f"http.{name} has {len(secret)} characters, fewer than {MIN_TOKEN_LENGTH}: "
                "use a random one (e.g. openssl rand -hex 32)"
            )
    if is_loopback(http.host) or _secret(http.api_token) or _secret(http.admin_token) or http.allow_unauthenticated:
        return
    raise InsecureSettings(
        f"refusing to serve on {http.host}, a non-loopback address, without a token: set http.api_token and "
        "http.admin_token (ANONYMIZER_HTTP__API_TOKEN, ANONYMIZER_HTTP__ADMIN_TOKEN), or "
        "http.allow_unauthenticated=true to serve the anonymization endpoints to anyone (the URL registry "
        "endpoints then answer 403)"
    )


def require_tokens(http: HttpSettings) -> Middleware:
    """The middleware enforcing the scopes for ``http`` (its tokens, public paths and host)."""
    admin = _secret(http.admin_token)
    api = _secret(http.api_token)
    loopback = is_loopback(http.host)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        scope = scope_of(request.path, http.public_paths)
        refusal = _refusal(scope, _bearer(request), admin=admin, api=api, loopback=loopback)
        return refusal if refusal is not None else await handler(request)

    return middleware


def security_requirements(path: str, http: HttpSettings) -> list[dict[str, list[str]]]:
    """The OpenAPI ``security`` of an operation on ``path``: none, the admin token, or either token."""
    scope = scope_of(path, http.public_paths)
    if scope is Scope.public:
        return []
    if scope is Scope.admin:
        return [{ADMIN_SCHEME: []}]
    return [{API_SCHEME: []}, {ADMIN_SCHEME: []}]


SECURITY_SCHEMES: dict[str, Any] = {
    API_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "`http.api_token`: every endpoint but the public paths (health, readiness, docs)",
    },
    ADMIN_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "`http.admin_token`: the URL registry changes, and everything the API token allows",
    },
}


def _refusal(
    scope: Scope, token: bytes | None, *, admin: bytes | None, api: bytes | None, loopback: bool
) -> web.Response | None:
    if scope is Scope.public:
        return None
    if scope is Scope.admin:
        if admin is None:
            if loopback:
                return None
            return _answer(
                403,
                "admin_disabled",
                "the URL registry endpoints need http.admin_token when the API listens on a non-loopback address",
            )
        granted: tuple[bytes, ...] = (admin,)
    else:
        granted = tuple(secret for secret in (api, admin) if secret is not None)
        if not granted:
            return None
    if token is None:
        return _answer(401, "unauthenticated", "this endpoint needs an 'Authorization: Bearer <token>' header")
    if not any(hmac.compare_digest(token, secret) for secret in granted):
        what = "the admin token" if scope is Scope.admin else "the API or admin token"
        return _answer(403, "forbidden", f"the bearer token is not {what}")
    return None


def _bearer(request: web.Request) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when absent or another scheme."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token.encode()


def _secret(value: SecretStr | None) -> bytes | None:
    """The token's bytes; an empty token counts as none (an empty variable must not open an endpoint)."""
    return value.get_secret_value().encode() if value is not None and value.get_secret_value() else None


def _answer(status: int, kind: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": REALM} if status == 401 else None
    return failure(status, message, FailureDetail(kind=kind, problems=[message]).model_dump(), headers=headers)

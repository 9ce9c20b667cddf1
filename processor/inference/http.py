"""Async client of the inference APIs (detection and segmentation services) over one shared aiohttp session: the
transport (bounds, timeouts, retries, health, outbound policy); what is sent and how answers are judged is
:mod:`processor.inference.contract`.

Every request is bounded (per URL and overall), has a timeout, and is retried with exponential backoff and
jitter (:mod:`processor.retry`) on connection errors, timeouts, 5xx, 408 and 429, up to ``max_attempts``; then it raises
:class:`InferenceUnavailable` (transient). Other 4xx, ``success: false`` and malformed JSON or PNG answers raise
:class:`InferenceRejected` (permanent) at once, naming the URL, the model and what was wrong. A URL that fails
``unhealthy_after_failures`` times in a row fails fast until ``probe_interval_s`` has passed, when requests go
through again as probes.

Every request obeys the outbound policy (:mod:`processor.inference.outbound`): refused hosts raise
:class:`OutboundRefused` (permanent) before a byte is sent, redirects are never followed, and no answer body is
ever quoted in an error (a registered URL must not read back what it reaches).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
import numpy as np

from processor.errors import InferenceAnswerTooLarge, InferenceRejected, InferenceUnavailable, OutboundRefused
from processor.frames import BoolMask, Box, Frame
from processor.inference.builtin.catalog import ModelInfo
from processor.inference.capabilities import redact_url
from processor.inference.contract import (
    Answer,
    EnvelopeT,
    decode_label_map,
    describe_body,
    for_model,
    looks_like_json,
    parse_envelope,
    rejected,
    upload_form,
)
from processor.inference.outbound import OutboundPolicy, outbound_session, refused_by_policy
from processor.retry import backoff_s
from processor.settings import InferenceSettings
from schemas.inference import (
    ConfigResponse,
    DetectionResponse,
    Envelope,
    LabelsResponse,
    ModelConfig,
    ModelsResponse,
    PaletteResponse,
)

log = logging.getLogger(__name__)

DataT = TypeVar("DataT")

_TRANSIENT_STATUS = frozenset({408, 429})


@dataclass(slots=True)
class _Endpoint:
    """Per-URL state: the concurrency bound, the health streak, and the generation of YOLO ``load`` calls."""

    slots: asyncio.Semaphore
    failures: int = 0
    last_problem: str = ""
    probe_at: float = 0.0
    load_generation: int = 0
    load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class InferenceClient:
    """HTTP client of the inference services; an async context manager.

    :param settings: the ``inference`` settings section (bounds, timeouts, retries, health).
    :param session: a shared session (from :func:`policy_session`: its resolver enforces the outbound policy),
        left open on exit; without one the client opens its own on enter and closes it on exit.
    """

    def __init__(self, settings: InferenceSettings, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self._policy = outbound_policy(settings)
        self._session = session
        self._owns_session = False
        self._total = asyncio.Semaphore(settings.total_concurrency)
        self._endpoints: dict[str, _Endpoint] = {}
        self._real_urls: dict[str, str] = {}  # shown URL (credentials redacted) → the URL with its credentials
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s, sock_connect=settings.connect_timeout_s)
        self._random = random.Random()  # noqa: S311 - backoff jitter, not cryptography

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = outbound_session(self._policy)
            self._owns_session = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._owns_session = False

    def shown_url(self, url: str) -> str:
        """Remember ``url``'s credentials and return the form every other call takes and every message shows:
        ``http://user:pass@host/`` → ``http://***@host/`` (requests to it carry ``user:pass`` again)."""
        shown = redact_url(url)
        if shown != url:
            self._real_urls[shown] = url
        return shown

    def is_healthy(self, url: str) -> bool:
        """False while ``url`` is marked unhealthy (failing fast until its next probe)."""
        endpoint = self._endpoints.get(url)
        return endpoint is None or endpoint.failures < self._settings.unhealthy_after_failures

    # Discovery ---------------------------------------------------------------------------------------------

    async def models(self, url: str) -> list[str]:
        """Model names served at ``url`` (a list, or the keys of OpenVINO's dict name → id)."""
        envelope = await self._get_json(url, None, "models", ModelsResponse)
        if envelope.data is None:
            raise InferenceRejected(f"GET {url}models answered without data")
        return envelope.data.names()

    async def labels(self, url: str, model: str) -> list[str]:
        """Labels of ``model``; for segmentation, a label's index is its class id in the label map.

        A YOLO service answers ``data: null`` until ``GET {url}load`` has been called: then load once, ask again.
        """
        return await self._get_loaded(url, model, "labels", LabelsResponse)

    async def config(self, url: str, model: str) -> ModelConfig:
        """The model's config (its ``type``: detection or segmentation); loads a YOLO service first if needed."""
        return await self._get_loaded(url, model, "config", ConfigResponse)

    async def palette(self, url: str, model: str) -> list[int]:
        """Flat RGB palette of a segmentation model (class ``i`` drawn as ``palette[3i:3i+3]``)."""
        path = f"models/{quote(model, safe='')}/palette"
        envelope = await self._get_json(url, model, path, PaletteResponse)
        if envelope.data is None:
            raise InferenceRejected(f"GET {url}{path} (model {model!r}) answered without a palette")
        return envelope.data

    async def describe(self, url: str) -> tuple[ModelInfo, ...]:
        """Every model at ``url`` with its type and labels.

        A model whose config or labels are rejected is left out (logged), so one broken model does not hide the
        others; :class:`InferenceUnavailable` propagates (the service is down, not the model).
        """
        names = await self.models(url)
        # return_exceptions: every model's discovery ends before an error propagates (no task left behind).
        described = await asyncio.gather(*(self._describe_model(url, name) for name in names), return_exceptions=True)
        for outcome in described:
            if isinstance(outcome, BaseException):
                raise outcome
        return tuple(model for model in described if isinstance(model, ModelInfo))

    async def _describe_model(self, url: str, name: str) -> ModelInfo | None:
        try:
            config = await self.config(url, name)
            labels = await self.labels(url, name)
        except InferenceRejected as error:
            log.warning("inference model %r at %s left out: %s", name, url, error)
            return None
        return ModelInfo(name, config.type, tuple(labels))

    async def _load_once(self, url: str, model: str, generation: int) -> None:
        """``GET {url}load`` (else ``GET {url}models/{m}/load``) unless a concurrent caller has just done it."""
        endpoint = self._endpoint(url)
        async with endpoint.load_lock:
            if endpoint.load_generation != generation:
                return
            log.info("inference service %s answers data: null; calling its load endpoint", url)
            answer = await self._call(url, model, "GET", "load")
            if answer.status == 404:
                answer = await self._call(url, model, "GET", f"models/{quote(model, safe='')}/load")
            if not 200 <= answer.status < 300:
                raise rejected(url, model, "load", f"HTTP {answer.status}")
            endpoint.load_generation += 1

    # Inference ---------------------------------------------------------------------------------------------

    async def detect(self, url: str, model: str, frame: Frame, label: str) -> tuple[Box, ...]:
        """Boxes of ``label`` found by detection ``model``: absolute float pixels, confidence 0..1.

        Boxes are matched by class name (class ids may be 0- or 1-based); boxes partly outside the frame are kept.
        """
        path = f"models/{quote(model, safe='')}/predict"
        answer = await self._call(url, model, "POST", path, upload=frame)
        envelope = parse_envelope(url, model, path, answer, DetectionResponse)
        if envelope.data is None:
            raise InferenceRejected(f"POST {url}{path} (model {model!r}) answered without data")
        return tuple(
            Box(
                left=found.coordinates.left,
                top=found.coordinates.top,
                right=found.coordinates.right,
                bottom=found.coordinates.bottom,
                label=label,
                confidence=found.confidence / 100.0,
            )
            for found in envelope.data.bounding_boxes
            if found.object_class_name == label
        )

    async def segment(self, url: str, model: str, frame: Frame, class_index: int) -> BoolMask:
        """Mask of the pixels whose class is ``class_index`` in the palette PNG label map, at the frame's size."""
        path = f"models/{quote(model, safe='')}/inference"
        answer = await self._call(url, model, "POST", path, upload=frame)
        if not 200 <= answer.status < 300 or looks_like_json(answer):
            parse_envelope(url, model, path, answer, Envelope[Any])  # raises with the service's own message
            raise InferenceRejected(f"POST {url}{path} (model {model!r}) answered JSON, expected a PNG label map")
        try:
            label_map = decode_label_map(answer.body, frame.height, frame.width)
        except ValueError as error:
            raise InferenceRejected(f"POST {url}{path} (model {model!r}): malformed label map: {error}") from None
        return np.asarray(label_map == class_index)

    # Transport ---------------------------------------------------------------------------------------------

    async def _get_loaded(self, url: str, model: str, leaf: str, schema: type[Envelope[DataT]]) -> DataT:
        """``GET models/{model}/{leaf}``; on ``data: null`` (a YOLO service not loaded yet, which may also say
        ``success: false, error: "Model not found"``) load once and ask again."""
        path = f"models/{quote(model, safe='')}/{leaf}"
        generation = self._endpoint(url).load_generation
        envelope = await self._get_json(url, model, path, schema, unloaded_ok=True)
        if envelope.data is None:
            await self._load_once(url, model, generation)
            envelope = await self._get_json(url, model, path, schema)  # success: false now is a real rejection
        if envelope.data is None:
            raise InferenceRejected(f"GET {url}{path} (model {model!r}) still answers data: null after load")
        return envelope.data

    async def _get_json(
        self, url: str, model: str | None, path: str, schema: type[EnvelopeT], *, unloaded_ok: bool = False
    ) -> EnvelopeT:
        answer = await self._call(url, model, "GET", path)
        return parse_envelope(url, model, path, answer, schema, unloaded_ok=unloaded_ok)

    async def _call(self, url: str, model: str | None, method: str, path: str, upload: Frame | None = None) -> Answer:
        """One request with bounded retries; returns any non-transient answer (the caller judges its status)."""
        endpoint = self._endpoint(url)
        shown = redact_url(url) + path  # messages show this one: never the credentials
        target = self._real_urls.get(url, url) + path
        self._policy.check_url(shown)
        attempt = 0
        while True:
            attempt += 1
            self._check_health(url, endpoint)
            retry_after_s: float | None = None
            try:
                async with endpoint.slots, self._total:
                    answer = await self._send(method, target, upload)
            except aiohttp.InvalidURL:
                raise InferenceRejected(f"{method} {shown}: invalid URL") from None
            except aiohttp.ClientConnectorError as error:
                refusal = refused_by_policy(error)
                if refusal is not None:
                    raise OutboundRefused(f"{method} {shown}: {refusal}") from None
                problem = _describe_error(error, self._settings.timeout_s)
            except (aiohttp.ClientError, TimeoutError) as error:
                problem = _describe_error(error, self._settings.timeout_s)
            else:
                if answer.status < 500 and answer.status not in _TRANSIENT_STATUS:
                    self._record_success(url, endpoint)
                    return answer
                problem = f"HTTP {answer.status}: {describe_body(answer)}"
                retry_after_s = answer.retry_after_s
            self._record_failure(url, endpoint, problem)
            if attempt >= self._settings.max_attempts:
                raise InferenceUnavailable(
                    f"{method} {shown}{for_model(model)} failed {attempt} time(s); last: {problem}", retry_after_s
                )
            settings = self._settings
            await asyncio.sleep(
                backoff_s(attempt, settings.backoff_base_s, settings.backoff_max_s, retry_after_s, self._random)
            )

    async def _send(self, method: str, target: str, upload: Frame | None) -> Answer:
        if self._session is None:
            raise RuntimeError("InferenceClient used outside 'async with' and without a session")
        # A FormData is consumed by one request: build it per attempt.
        data = upload_form(upload) if upload is not None else None
        request = self._session.request(method, target, data=data, timeout=self._timeout, allow_redirects=False)
        async with request as response:
            body = await _read_bounded(response, self._settings.max_answer_bytes, target)
            return Answer(response.status, response.content_type, body, _retry_after(response.headers))

    def _endpoint(self, url: str) -> _Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = _Endpoint(asyncio.Semaphore(self._settings.per_url_concurrency))
            self._endpoints[url] = endpoint
        return endpoint

    def _check_health(self, url: str, endpoint: _Endpoint) -> None:
        if endpoint.failures < self._settings.unhealthy_after_failures:
            return
        wait_s = endpoint.probe_at - time.monotonic()
        if wait_s > 0:
            raise InferenceUnavailable(
                f"{url} is marked unhealthy after {endpoint.failures} failures in a row "
                f"(last: {endpoint.last_problem}); next probe in {wait_s:.1f} s",
                retry_after_s=wait_s,
            )

    def _record_failure(self, url: str, endpoint: _Endpoint, problem: str) -> None:
        endpoint.failures += 1
        endpoint.last_problem = problem
        if endpoint.failures >= self._settings.unhealthy_after_failures:
            endpoint.probe_at = time.monotonic() + self._settings.probe_interval_s
            if endpoint.failures == self._settings.unhealthy_after_failures:
                log.warning("inference service %s marked unhealthy: %s", url, problem)

    def _record_success(self, url: str, endpoint: _Endpoint) -> None:
        if endpoint.failures >= self._settings.unhealthy_after_failures:
            log.info("inference service %s answers again", url)
        endpoint.failures = 0


async def _read_bounded(response: aiohttp.ClientResponse, max_bytes: int, target: str) -> bytes:
    """The body, or InferenceAnswerTooLarge as soon as it passes ``max_bytes`` (declared or counted): an answer
    never costs more memory than the limit."""
    too_large = InferenceAnswerTooLarge(
        f"{response.method} {redact_url(target)}: the answer is over inference.max_answer_bytes ({max_bytes} bytes)"
    )
    if response.content_length is not None and response.content_length > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignored, the backoff applies


def _describe_error(error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return f"{type(error).__name__}: {error}"


def outbound_policy(settings: InferenceSettings) -> OutboundPolicy:
    """The outbound policy the ``inference`` settings describe."""
    return OutboundPolicy(settings.allowed_hosts, settings.allowed_networks)


def policy_session(settings: InferenceSettings) -> aiohttp.ClientSession:
    """A session to share between clients, connecting only where the settings' outbound policy allows."""
    return outbound_session(outbound_policy(settings))

"""The inference APIs' contract, pure: what a request uploads and how an answer is judged (no I/O).

An :class:`Answer` is what the transport (:mod:`processor.inference.http`) got back; :func:`parse_envelope` turns
it into a validated envelope or an :class:`InferenceRejected` naming the URL, the model and what was wrong (never
quoting the answer's body: a registered URL must not read back what it reaches); :func:`decode_label_map` reads a
segmentation service's PNG; :func:`upload_form` is the multipart body of a frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import cv2
import numpy as np
import numpy.typing as npt
import orjson
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from processor.errors import InferenceRejected
from processor.frames import Frame
from schemas.inference import Envelope

EnvelopeT = TypeVar("EnvelopeT", bound=Envelope[Any])

_MAX_LABEL_MAP_RATIO = 4  # a label map may have at most 4x the frame's pixels (guards against PNG bombs)
_MAX_ERROR_TEXT = 200  # characters of a service's own `error` field quoted in a rejection
_EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as the transport read it."""

    status: int
    content_type: str
    body: bytes
    retry_after_s: float | None


def decode_label_map(png: bytes, height: int, width: int) -> npt.NDArray[np.int32]:
    """A palette (or grayscale) PNG of class indices → an HxW int32 array at the frame's size (nearest neighbour).

    Raises :class:`ValueError` naming what is wrong: not a PNG, colour instead of indices, too big.
    """
    try:
        image = Image.open(io.BytesIO(png))
    except UnidentifiedImageError:  # its message names the in-memory buffer ("<_io.BytesIO object at 0x…>")
        raise ValueError(f"not an image (no image format recognised; {len(png)} bytes)") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:  # PIL's ways of saying "corrupt"
        raise ValueError(f"not an image ({error}; {len(png)} bytes)") from None
    with image:
        if image.format != "PNG":
            raise ValueError(f"a {image.format} image, expected a PNG")
        if image.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(f"PNG mode {image.mode}, expected palette (P) or grayscale class indices")
        map_width, map_height = image.size
        if map_width * map_height > _MAX_LABEL_MAP_RATIO * max(height * width, 1):
            raise ValueError(f"label map {map_width}x{map_height} is far larger than the {width}x{height} frame")
        try:
            indices = np.asarray(image, dtype=np.int32)
        except (OSError, SyntaxError) as error:
            raise ValueError(f"corrupt PNG data ({error})") from None
    if indices.ndim != 2 or indices.size == 0:
        raise ValueError(f"label map of shape {indices.shape}, expected HxW")
    if indices.shape != (height, width):
        indices = np.asarray(cv2.resize(indices, (width, height), interpolation=cv2.INTER_NEAREST), dtype=np.int32)
    return indices


def parse_envelope(
    url: str, model: str | None, path: str, answer: Answer, schema: type[EnvelopeT], *, unloaded_ok: bool = False
) -> EnvelopeT:
    """A 2xx JSON envelope that does not say ``success: false``, else :class:`InferenceRejected`. With
    ``unloaded_ok``, ``success: false`` with ``data: null`` is returned too (a model not loaded yet)."""
    try:
        document = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        if not 200 <= answer.status < 300:
            raise rejected(url, model, path, f"HTTP {answer.status}: {describe_body(answer)}") from None
        raise rejected(url, model, path, f"malformed JSON: {describe_body(answer)}") from None
    error_text = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error_text, str):
        error_text = None
    if not 200 <= answer.status < 300:
        raise rejected(url, model, path, f"HTTP {answer.status}: {_error_text(error_text) or describe_body(answer)}")
    try:
        envelope = schema.model_validate(document)
    except ValidationError as error:
        raise rejected(url, model, path, f"unexpected answer: {_first_problem(error)}") from None
    if envelope.failed and not (unloaded_ok and envelope.data is None):
        raise rejected(url, model, path, f"success: false: {_error_text(envelope.error) or 'no error message'}")
    return envelope


def rejected(url: str, model: str | None, path: str, problem: str) -> InferenceRejected:
    return InferenceRejected(f"{url}{path}{for_model(model)}: {problem}")


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" + (f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else "")


def upload_form(frame: Frame) -> aiohttp.FormData:
    form = aiohttp.FormData()
    extension = _EXTENSIONS.get(frame.format, frame.format)
    # A BytesIO, not bytes: aiohttp warns that large raw bytes bodies may block the event loop.
    form.add_field(
        "input_data", io.BytesIO(frame.encoded), filename=f"frame.{extension}", content_type=f"image/{frame.format}"
    )
    return form


def looks_like_json(answer: Answer) -> bool:
    return answer.content_type == "application/json" or answer.body[:1] in (b"{", b"[")


def describe_body(answer: Answer) -> str:
    """What an answer was, never what it said: its bytes are not ours to show."""
    return f"a {len(answer.body)}-byte {answer.content_type or 'untyped'} body"


def _error_text(text: str | None) -> str | None:
    """A service's own ``error`` message (the contract's field), cut short."""
    if text is None:
        return None
    return text[:_MAX_ERROR_TEXT] + ("…" if len(text) > _MAX_ERROR_TEXT else "")


def for_model(model: str | None) -> str:
    return f" (model {model!r})" if model is not None else ""

"""One frame's path: bytes + configuration → localize every entry → anonymize → encode → bytes + result.

The same function serves the stream processor, the HTTP API, the CLI and the benchmarks; the library API
(:mod:`processor.library`) also gives decoded pixels, which take the same steps without decoding and encoding
(:func:`anonymize_pixels`). Decoding,
anonymizing and encoding run in worker threads (OpenCV releases the GIL), localizing runs concurrently for
all entries of the configuration, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processor.anonymize import apply_boxes, apply_mask, clamp_box
from processor.anonymize.outline import draw_regions
from processor.errors import ImageUndecodable, PermanentError, ProcessorError
from processor.frames import BgrImage, Box, Frame, Localization
from processor.inference.base import Localizer
from processor.media import CONTENT_TYPES, check_size, decode, encode, probe
from processor.pixel_budget import PixelBudget
from processor.settings import LimitsSettings, OutputSettings
from schemas.config import InferenceType, SensitiveInfo, UserConfiguration
from schemas.results import FoundRegion, FrameResult, LabelSummary


@dataclass(frozen=True, slots=True)
class AnonymizedImage:
    data: bytes
    content_type: str
    result: FrameResult


@dataclass(frozen=True, slots=True)
class AnonymizedPixels:
    pixels: BgrImage  # a new array, in the channel order of the input
    result: FrameResult


NO_BUDGET = PixelBudget(None)
"""For callers that hold one frame at a time (the benchmarks)."""

PIXELS_FORMAT = "pixels"
"""``FrameResult.format`` of a frame given as an array (no encoded format)."""


async def anonymize_image(
    data: bytes,
    configuration: UserConfiguration,
    localizer: Localizer,
    *,
    output: OutputSettings,
    limits: LimitsSettings,
    budget: PixelBudget = NO_BUDGET,
    slots: asyncio.Semaphore | None = None,
) -> AnonymizedImage:
    """Anonymize one encoded image. Raises PermanentError (bad image, unknown label, ...) or TransientError
    (an inference service unavailable); nothing is half-written since this function does no I/O of its own.

    :param budget: the process's decoded-pixel budget, held from decoding to the encoded output (an image above
        ``limits.max_pixels`` is refused before it waits).
    :param slots: a bound on frames worked on at once, taken once the pixels are granted: a frame waiting for
        pixels holds no slot, so it cannot keep a small frame of the budget's small lane waiting."""
    started = time.perf_counter()
    upload = localizer.needs_encoded_frames(configuration.sensitive_info)
    header = probe(data)
    check_size(header.width, header.height, limits.max_pixels)
    async with budget.hold(header.pixels), slots or contextlib.nullcontext():
        frame = await asyncio.to_thread(decode, data, limits.max_pixels, upload=upload, header=header)
        timings = {"decode": _ms(time.perf_counter() - started)}
        summaries, regions = await _hide(frame, configuration, localizer, output, timings)
        encoding = time.perf_counter()
        encoded = await asyncio.to_thread(
            encode,
            frame.pixels,
            frame.format,
            jpeg_quality=output.jpeg_quality,
            metadata_from=data if output.keep_metadata else None,
        )
    finished = time.perf_counter()
    timings |= {"encode": _ms(finished - encoding), "total": _ms(finished - started)}
    result = _result(frame, frame.format, configuration, summaries, regions, timings)
    return AnonymizedImage(data=encoded, content_type=CONTENT_TYPES[frame.format], result=result)


async def anonymize_pixels(
    pixels: BgrImage,
    configuration: UserConfiguration,
    localizer: Localizer,
    *,
    output: OutputSettings,
    limits: LimitsSettings,
    rgb: bool = False,
    upload: bool = True,
) -> AnonymizedPixels:
    """Anonymize decoded pixels: the same steps as :func:`anonymize_image` without decoding and encoding. The
    caller's array is never written to; the answer is a new array. Timings: prepare (check, copy, the JPEG
    copy), localize, anonymize, total.

    :param pixels: H×W×3 uint8, BGR (OpenCV's order), or RGB with ``rgb``; anything else is refused
        (ImageUndecodable, saying how to convert), as are more than ``limits.max_pixels`` pixels (ImageTooLarge).
    :param upload: give localizers a JPEG copy (``Frame.encoded``), which HTTP inference services upload; the
        built-in models read the pixels only (see :func:`processor.video.pipeline.needs_upload`).
    """
    started = time.perf_counter()
    quality = output.jpeg_quality if upload else None
    frame = await asyncio.to_thread(pixel_frame, pixels, limits.max_pixels, rgb=rgb, upload_quality=quality)
    timings = {"prepare": _ms(time.perf_counter() - started)}
    summaries, regions = await _hide(frame, configuration, localizer, output, timings)
    hidden = np.ascontiguousarray(frame.pixels[..., ::-1]) if rgb else frame.pixels
    timings["total"] = _ms(time.perf_counter() - started)
    return AnonymizedPixels(hidden, _result(frame, PIXELS_FORMAT, configuration, summaries, regions, timings))


async def detect_regions(
    frame: Frame, configuration: UserConfiguration, localizer: Localizer, *, output: OutputSettings
) -> list[FoundRegion]:
    """The regions :func:`anonymize_image` would hide in ``frame`` (boxes scaled and clamped alike), nothing hidden."""
    entries = configuration.sensitive_info
    localizations = await localize_all(frame, entries, localizer)
    return [
        region
        for entry, found in zip(entries, localizations, strict=True)
        for region in _regions(found.label, _hidden_boxes(entry, found, output), frame.width, frame.height, output)
    ]


def pixel_frame(pixels: BgrImage, max_pixels: int, *, rgb: bool = False, upload_quality: int | None = None) -> Frame:
    """A frame of its own (BGR, contiguous) from the caller's pixels, checked; with ``upload_quality`` it carries
    a JPEG copy for HTTP inference services, else no encoded bytes."""
    _check_pixels(pixels, max_pixels)
    copy = np.ascontiguousarray(pixels[..., ::-1]) if rgb else np.array(pixels, order="C")
    encoded = b"" if upload_quality is None else encode(copy, "jpeg", jpeg_quality=upload_quality)
    return Frame(pixels=copy, encoded=encoded, format="jpeg")


def _check_pixels(pixels: BgrImage, max_pixels: int) -> None:
    if not isinstance(pixels, np.ndarray):
        raise ImageUndecodable(f"pixels must be a numpy array, got {type(pixels).__name__}")
    shape = "×".join(map(str, pixels.shape))
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 1):
        raise ImageUndecodable(
            f"grey pixels ({shape}) are refused: give H×W×3, e.g. cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)"
        )
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        raise ImageUndecodable(
            f"4-channel pixels ({shape}) are refused: drop the alpha channel, e.g. cv2.cvtColor(image, "
            "cv2.COLOR_BGRA2BGR) (the output would have none either)"
        )
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageUndecodable(f"pixels must be H×W×3 (BGR), got shape {shape or '()'}")
    if pixels.dtype != np.uint8:
        raise ImageUndecodable(
            f"pixels must be uint8 (0..255), got {pixels.dtype}: scale to 0..255, then .astype(np.uint8)"
        )
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ImageUndecodable(f"empty pixels ({shape}) are not an image")
    check_size(width, height, max_pixels)


async def _hide(
    frame: Frame,
    configuration: UserConfiguration,
    localizer: Localizer,
    output: OutputSettings,
    timings: dict[str, float],
) -> tuple[list[LabelSummary], list[FoundRegion]]:
    """Localize every entry, then hide what they found in ``frame.pixels`` (in place); records the two timings."""
    localizing = time.perf_counter()
    localizations = await localize_all(frame, configuration.sensitive_info, localizer)
    localized = time.perf_counter()
    summaries, regions, anonymized_at = await asyncio.to_thread(
        hide_regions, frame.pixels, configuration.sensitive_info, localizations, output
    )
    timings |= {"localize": _ms(localized - localizing), "anonymize": _ms(anonymized_at - localized)}
    return summaries, regions


def _result(
    frame: Frame,
    fmt: str,
    configuration: UserConfiguration,
    summaries: list[LabelSummary],
    regions: list[FoundRegion],
    timings: dict[str, float],
) -> FrameResult:
    return FrameResult(
        width=frame.width,
        height=frame.height,
        format=fmt,
        counts=dict(Counter(region.label for region in regions)),
        labels=summaries,
        regions=regions,
        timings_ms=timings,
        configuration_hash=configuration.digest(),
    )


async def localize_all(frame: Frame, entries: Sequence[SensitiveInfo], localizer: Localizer) -> list[Localization]:
    """Localize every entry concurrently, on the original pixels (nothing is hidden before all have looked).

    The first failure cancels the others; a permanent error wins over a transient one, since retrying the
    frame could not help."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(localizer.localize(frame, entry)) for entry in entries]
    except* ProcessorError as failures:
        errors = failures.exceptions
        raise next((e for e in errors if isinstance(e, PermanentError)), errors[0]) from None
    return [task.result() for task in tasks]


def hide_regions(
    pixels: BgrImage,
    entries: Sequence[SensitiveInfo],
    localizations: Sequence[Localization],
    output: OutputSettings,
) -> tuple[list[LabelSummary], list[FoundRegion], float]:
    """Hide what each entry found, in place (boxes under ``output.min_score`` are left), then outline the regions
    when ``output.draw_regions``; returns the per-entry summaries, the regions and the end time."""
    height, width = pixels.shape[:2]
    summaries: list[LabelSummary] = []
    regions: list[FoundRegion] = []
    for entry, found in zip(entries, localizations, strict=True):
        technique, degree = entry.anonymization_technique, entry.anonymization_degree
        mask_pixels = 0
        boxes = _hidden_boxes(entry, found, output)
        mask = found.mask if entry.inference_type is InferenceType.segmentation else None
        if mask is not None:
            count = apply_mask(pixels, mask, technique, degree)
            mask_pixels = int(mask.sum())
        else:
            scale = output.box_scale.get(found.label, 1.0)
            count = apply_boxes(
                pixels, boxes, technique, degree, scale=scale, ellipse=found.label in output.ellipse_labels
            )
        regions.extend(_regions(found.label, boxes, width, height, output))
        summaries.append(
            LabelSummary(
                label=entry.class_name,
                model_name=entry.model_name,
                source=found.source,
                technique=technique,
                degree=degree,
                count=count,
                mask_pixels=mask_pixels,
            )
        )
    if output.draw_regions:
        draw_regions(pixels, regions)
    return summaries, regions, time.perf_counter()


def _hidden_boxes(entry: SensitiveInfo, found: Localization, output: OutputSettings) -> tuple[Box, ...]:
    """The boxes of what ``found`` hides: all of a mask's, a detector's from ``output.min_score`` on."""
    if entry.inference_type is InferenceType.segmentation and found.mask is not None:
        return found.boxes
    return tuple(box for box in found.boxes if box.confidence >= output.min_score.get(found.label, 0.0))


def _regions(label: str, boxes: Sequence[Box], width: int, height: int, output: OutputSettings) -> list[FoundRegion]:
    """The hidden boxes, scaled like the hidden ones and clamped to the image (empty ones dropped)."""
    scale = output.box_scale.get(label, 1.0)
    regions = []
    for box in boxes:
        clamped = clamp_box(box, width, height, scale=scale)
        if clamped is not None:
            regions.append(FoundRegion(label=label, box=clamped, confidence=min(max(box.confidence, 0), 1)))
    return regions


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)

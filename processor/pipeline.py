"""One frame's path: bytes + configuration → localize every entry → anonymize → encode → bytes + result.

The same function serves the stream processor, the HTTP API, the CLI and the benchmarks. Decoding,
anonymizing and encoding run in worker threads (OpenCV releases the GIL), localizing runs concurrently for
all entries of the configuration, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from processor.anonymize import apply_boxes, apply_mask, clamp_box
from processor.anonymize.outline import draw_regions
from processor.errors import PermanentError, ProcessorError
from processor.frames import BgrImage, Frame, Localization
from processor.inference.base import Localizer
from processor.media import CONTENT_TYPES, decode, encode
from processor.settings import LimitsSettings, OutputSettings
from schemas.config import InferenceType, SensitiveInfo, UserConfiguration
from schemas.results import FoundRegion, FrameResult, LabelSummary


@dataclass(frozen=True, slots=True)
class AnonymizedImage:
    data: bytes
    content_type: str
    result: FrameResult


async def anonymize_image(
    data: bytes,
    configuration: UserConfiguration,
    localizer: Localizer,
    *,
    output: OutputSettings,
    limits: LimitsSettings,
) -> AnonymizedImage:
    """Anonymize one encoded image. Raises PermanentError (bad image, unknown label, ...) or TransientError
    (an inference service unavailable); nothing is half-written since this function does no I/O of its own."""
    started = time.perf_counter()
    frame = await asyncio.to_thread(decode, data, limits.max_pixels)
    decoded = time.perf_counter()
    localizations = await localize_all(frame, configuration.sensitive_info, localizer)
    localized = time.perf_counter()
    summaries, regions, anonymized_at = await asyncio.to_thread(
        hide_regions, frame.pixels, configuration.sensitive_info, localizations, output
    )
    encoded = await asyncio.to_thread(
        encode,
        frame.pixels,
        frame.format,
        jpeg_quality=output.jpeg_quality,
        metadata_from=data if output.keep_metadata else None,
    )
    finished = time.perf_counter()
    result = FrameResult(
        width=frame.width,
        height=frame.height,
        format=frame.format,
        counts=dict(Counter(region.label for region in regions)),
        labels=summaries,
        regions=regions,
        timings_ms={
            "decode": _ms(decoded - started),
            "localize": _ms(localized - decoded),
            "anonymize": _ms(anonymized_at - localized),
            "encode": _ms(finished - anonymized_at),
            "total": _ms(finished - started),
        },
        configuration_hash=configuration.digest(),
    )
    return AnonymizedImage(data=encoded, content_type=CONTENT_TYPES[frame.format], result=result)


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
        boxes = found.boxes
        if entry.inference_type is InferenceType.segmentation and found.mask is not None:
            count = apply_mask(pixels, found.mask, technique, degree)
            mask_pixels = int(found.mask.sum())
        else:
            boxes = tuple(box for box in boxes if box.confidence >= output.min_score.get(found.label, 0.0))
            scale = output.box_scale.get(found.label, 1.0)
            count = apply_boxes(
                pixels, boxes, technique, degree, scale=scale, ellipse=found.label in output.ellipse_labels
            )
        for box in boxes:
            clamped = clamp_box(box, width, height, scale=output.box_scale.get(found.label, 1.0))
            if clamped is not None:
                regions.append(FoundRegion(label=found.label, box=clamped, confidence=min(max(box.confidence, 0), 1)))
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


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)

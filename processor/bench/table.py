"""The original README's benchmark table, measured here: per resolution, inference time, anonymization time and the
whole frame's time, for the built-in detectors and for any inference service of the original contract.

Each figure is the median of ``repeat`` runs of :func:`processor.pipeline.anonymize_image` (the path the stream, the
API and the CLI share) on the same JPEG frame, after one warm-up run: ``inference_ms`` is its ``localize`` stage
(through the built-in models in-process, or the HTTP client to the service), ``anonymization_ms`` its ``anonymize``
stage (blurring, degree 1), ``total_ms`` the whole call (decode + localize + anonymize + encode). The frame is a
street scene with 7 real faces 32–240 px high (:func:`processor.bench.scenes.crowd_frame`), the same people at every
resolution.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import orjson

from processor.bench.scenes import crowd_frame
from processor.inference.builtin.catalog import BUILTIN_URL
from processor.inference.http import InferenceClient
from processor.localizers import open_localizer
from processor.pipeline import anonymize_image
from processor.settings import InferenceSettings, Settings
from schemas.config import InferenceType, SensitiveInfo, UserConfiguration

RESOLUTIONS: tuple[tuple[int, int], ...] = ((640, 768), (1024, 768), (2048, 1024), (3840, 2160))
"""Width x height, as in the original README."""

FACE_HEIGHTS = [32, 40, 48, 64, 96, 140, 240]


@dataclass(frozen=True)
class Detector:
    """One row group of the table: a model and label, served in-process (``url=builtin``) or by a service."""

    name: str
    model: str
    label: str
    inference_type: InferenceType
    url: str = BUILTIN_URL


BUILTIN_DETECTORS = (
    Detector("faces", "centerface", "face", InferenceType.detection),
    Detector("licence plates", "plate_reader", "license_plate", InferenceType.detection),
    Detector("licence plates (Haar)", "plate_cascade", "license_plate", InferenceType.detection),
    Detector("persons", "selfie_segmentation", "person", InferenceType.segmentation),
)


async def service_detector(url: str, model: str, label: str, settings: InferenceSettings) -> Detector:
    """A detector served at ``url``; its type (detection or segmentation) is what the service's config says.
    Raises the client's errors when the service does not answer or does not know the model."""
    async with InferenceClient(settings) as client:
        config = await client.config(url, model)
    return Detector(f"{model} at {url}", model, label, config.type, url)


async def measure_table(
    detectors: Sequence[Detector],
    settings: Settings,
    *,
    resolutions: Sequence[tuple[int, int]] = RESOLUTIONS,
    repeat: int = 3,
) -> list[dict[str, Any]]:
    """One row per detector and resolution: ``detector``, ``model``, ``url``, ``type``, ``width``, ``height``,
    ``regions`` (found in the frame), ``inference_ms``, ``anonymization_ms``, ``decode_ms``, ``encode_ms``,
    ``total_ms`` (medians). Raises the pipeline's errors (an unreachable service, an unknown label, ...)."""
    frames = {size: _jpeg(size) for size in resolutions}
    with tempfile.TemporaryDirectory(prefix="anonymizer-bench-") as folder:
        registry = Path(folder) / "url_configuration.json"
        services = sorted({detector.url for detector in detectors} - {BUILTIN_URL})
        registry.write_bytes(orjson.dumps({"urls": [*services, BUILTIN_URL]}))  # services first: they win
        inference = settings.inference.model_copy(update={"url_configuration": registry})
        rows = []
        async with open_localizer(settings.model_copy(update={"inference": inference})) as localizer:
            for detector in detectors:
                configuration = UserConfiguration(sensitive_info=[_entry(detector)])
                for (width, height), data in frames.items():
                    timings: dict[str, list[float]] = {}
                    regions = 0
                    for run in range(repeat + 1):
                        result = (
                            await anonymize_image(
                                data, configuration, localizer, output=settings.output, limits=settings.limits
                            )
                        ).result
                        regions = sum(label.count for label in result.labels)
                        if run == 0:
                            continue  # warm-up: models load, connections open
                        for stage, ms in result.timings_ms.items():
                            timings.setdefault(stage, []).append(ms)
                    medians = {stage: round(statistics.median(values), 2) for stage, values in timings.items()}
                    rows.append(
                        {
                            "detector": detector.name,
                            "model": detector.model,
                            "url": detector.url,
                            "type": detector.inference_type.value,
                            "width": width,
                            "height": height,
                            "regions": regions,
                            "inference_ms": medians["localize"],
                            "anonymization_ms": medians["anonymize"],
                            "decode_ms": medians["decode"],
                            "encode_ms": medians["encode"],
                            "total_ms": medians["total"],
                        }
                    )
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"{'detector':<16} {'model':<20} {'width':>5} {'height':>6} {'inference':>10} {'anonymization':>13} "
        f"{'total':>9}  regions"
    ]
    for row in rows:
        lines.append(
            f"{row['detector'][:16]:<16} {row['model'][:20]:<20} {row['width']:>5} {row['height']:>6} "
            f"{row['inference_ms'] / 1000:>9.3f}s {row['anonymization_ms'] / 1000:>12.3f}s "
            f"{row['total_ms'] / 1000:>8.3f}s  {row['regions']}"
        )
    return "\n".join(lines)


def _entry(detector: Detector) -> SensitiveInfo:
    return SensitiveInfo(
        model_name=detector.model,
        class_name=detector.label,
        anonymization_technique="blurring",
        inference_type=detector.inference_type,
        anonymization_degree=1.0,
        url=detector.url if detector.url == BUILTIN_URL else None,
    )


def _jpeg(size: tuple[int, int]) -> bytes:
    frame, _ = crowd_frame(FACE_HEIGHTS, size, seed=0)
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buffer)

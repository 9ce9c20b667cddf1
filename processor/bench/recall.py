"""`anonymizer bench --only recall`: detection quality on the hand-annotated real-photo set.

For every probe (a label and the built-in model that finds it) and both views of each photo (native, and shrunk
x0.5 in a grey 1080p frame: the same objects far away), it reports recall, recall by object size, false
positives per image and CPU milliseconds per image; then, end to end, whether the annotated faces, plates and
persons are really hidden in the pixels the default pipeline writes (with ``--persons`` for the persons). The
rules (found, false positive, size bucket, hidden) are in :mod:`processor.bench.recall_metrics`; the set in
:mod:`processor.bench.recall_set`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from processor.bench.recall_metrics import SIZE_BUCKETS, false_positives, found_flags, is_hidden, size_bucket
from processor.bench.recall_set import AnnotatedImage, in_context, load_set
from processor.configuration import default_configuration
from processor.inference.builtin.models import BuiltinModels
from processor.localizers import open_localizer
from processor.media import decode
from processor.pipeline import anonymize_image
from processor.settings import Settings

Row = dict[str, object]


@dataclass(frozen=True, slots=True)
class Probe:
    label: str  # the label of the truth boxes
    model: str  # the built-in model whose boxes of ``label`` are scored


PROBES = (
    Probe("face", "centerface"),
    Probe("license_plate", "plate_reader"),
    Probe("license_plate", "plate_cascade"),
    Probe("person", "nanodet"),
    Probe("vehicle", "nanodet"),
)


def views(images: Sequence[AnnotatedImage]) -> list[tuple[str, list[AnnotatedImage]]]:
    return [("native", list(images)), ("far (1080p)", [in_context(image) for image in images])]


def by_size(truths: Sequence[tuple[float, float, float, float]], found: Sequence[bool]) -> str:
    """``found/total`` per size bucket that has objects, e.g. ``20-50: 3/4, >=150: 2/2``."""
    parts = []
    for name, _, _ in SIZE_BUCKETS:
        flags = [flag for truth, flag in zip(truths, found, strict=True) if size_bucket(truth) == name]
        if flags:
            parts.append(f"{name}: {sum(flags)}/{len(flags)}")
    return ", ".join(parts)


def score_probe(models: BuiltinModels, probe: Probe, view: str, images: Sequence[AnnotatedImage]) -> Row:
    """One row: the probe's model run on every image that annotates its label (CPU time of this thread)."""
    scored = [image for image in images if probe.label in image.boxes]
    truths: list[tuple[float, float, float, float]] = []
    found: list[bool] = []
    false = 0
    cpu_s = 0.0
    for image in scored:
        started = time.thread_time()
        boxes = models.run_detection(probe.model, image.pixels)
        cpu_s += time.thread_time() - started
        rects = [(box.left, box.top, box.right, box.bottom) for box in boxes if box.label == probe.label]
        truth = image.boxes[probe.label]
        truths += truth
        found += found_flags(truth, rects)
        false += false_positives(truth, rects)
    images_count = max(1, len(scored))
    return {
        "kind": "detection",
        "view": view,
        "label": probe.label,
        "model": probe.model,
        "images": len(scored),
        "objects": len(truths),
        "found": sum(found),
        "recall": round(sum(found) / len(found), 3) if found else None,
        "by_size": by_size(truths, found),
        "false_per_image": round(false / images_count, 2),
        "cpu_ms_per_image": round(1000 * cpu_s / images_count),
    }


HIDDEN_BY = {
    "face": (False, "pipeline (default)"),
    "license_plate": (False, "pipeline (default)"),
    "person": (True, "pipeline (default + --persons)"),
}
"""Per hidden label: whether it is scored on the default configuration with ``--persons``, and the row's name.
Faces and plates are scored without persons, whose boxes would cover heads and cars' fronts."""


async def hidden_rows(settings: Settings, view: str, images: Sequence[AnnotatedImage]) -> list[Row]:
    """End to end: each photo (as PNG, lossless) through the default pipeline (and with ``--persons`` for the
    persons); per label, how many annotated regions are hidden in the decoded output."""
    configurations = {persons: default_configuration(persons=persons) for persons in (False, True)}
    hidden: dict[str, list[bool]] = {label: [] for label in HIDDEN_BY}
    async with open_localizer(settings) as localizer:
        for image in images:
            encoded = cv2.imencode(".png", image.pixels)[1].tobytes()
            for persons, configuration in configurations.items():
                result = await anonymize_image(
                    encoded, configuration, localizer, output=settings.output, limits=settings.limits
                )
                after = np.asarray(decode(result.data, settings.limits.max_pixels).pixels, np.uint8)
                for label, (with_persons, _) in HIDDEN_BY.items():
                    if with_persons is persons:
                        hidden[label] += [is_hidden(image.pixels, after, box) for box in image.boxes.get(label, [])]
    return [
        {
            "kind": "hidden",
            "view": view,
            "label": label,
            "model": HIDDEN_BY[label][1],
            "objects": len(flags),
            "hidden": sum(flags),
            "share": round(sum(flags) / len(flags), 3) if flags else None,
        }
        for label, flags in hidden.items()
    ]


def run_recall_bench(settings: Settings, cache: Path, manifest: dict[str, object] | None = None) -> list[Row]:
    """The detection rows then the hidden rows, both views, over the set in ``cache`` (``manifest``'s images,
    default all). Raises :class:`processor.bench.recall_set.SetMissing` when the set is not fetched."""
    images = load_set(cache, manifest)
    models = BuiltinModels(settings.builtin)
    models.warm_up()
    detection: list[Row] = []
    hidden: list[Row] = []
    for view, shown in views(images):
        detection += [score_probe(models, probe, view, shown) for probe in PROBES]
        hidden += asyncio.run(hidden_rows(settings, view, shown))
    return detection + hidden


DETECTION_COLUMNS = ("view", "label", "model", "found", "objects", "by_size", "false_per_image", "cpu_ms_per_image")
HIDDEN_COLUMNS = ("view", "label", "model", "hidden", "objects")


def format_recall(rows: Sequence[Row]) -> str:
    """Two Markdown tables (detection, then hidden in the output), as the README shows them."""
    blocks = []
    for kind, columns in (("detection", DETECTION_COLUMNS), ("hidden", HIDDEN_COLUMNS)):
        chosen = [row for row in rows if row["kind"] == kind]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in chosen]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)

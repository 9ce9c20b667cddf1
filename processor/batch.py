"""The local CLI's job: anonymize image files and folders, several at a time, with progress and a report."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson
from tqdm import tqdm

from processor.errors import OutputNotAllowed, ProcessorError
from processor.inference.base import Localizer
from processor.media import IMAGE_SUFFIXES
from processor.pipeline import anonymize_image
from processor.settings import Settings
from schemas.config import UserConfiguration


@dataclass
class BatchSummary:
    done: int = 0
    failed: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def line(self) -> str:
        found = ", ".join(f"{count} {label}" for label, count in sorted(self.counts.items())) or "nothing"
        rate = self.done / self.seconds if self.seconds else 0.0
        failed = f"; {self.failed} failed (see the JSON lines with status 'error')" if self.failed else ""
        return f"anonymized {self.done} file(s) in {self.seconds:.1f} s ({rate:.2f} frames/s), hid {found}{failed}"


def collect_images(paths: Sequence[Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """(source, destination) pairs: folders are searched recursively for images and mirrored under ``out_dir``
    (``out_dir`` itself skipped when it lies inside one); files named explicitly are taken whatever their suffix
    (a non-image then fails with a clear error).

    Raises :class:`OutputNotAllowed`, before anything is written, when a destination would replace an input or
    two inputs would be written to one destination: the CLI never destroys an input or a result.
    """
    out_resolved = out_dir.resolve()
    pairs: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            folder = path.resolve()
            if folder == out_resolved:
                raise OutputNotAllowed(f"--out {out_dir} is the input folder {path}: the outputs would replace it")
            skip_out = out_resolved.is_relative_to(folder)
            for source in sorted(path.rglob("*")):
                if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
                    if skip_out and source.resolve().is_relative_to(out_resolved):
                        continue  # an earlier run's outputs inside the input folder
                    pairs.append((source, out_dir / source.relative_to(path)))
        else:
            pairs.append((path, out_dir / path.name))
    return _without_overwrites(pairs)


def _without_overwrites(pairs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """``pairs`` with each source once; raises OutputNotAllowed on a destination that is an input or is shared."""
    unique = list({source.resolve(): (source, destination) for source, destination in pairs}.values())
    sources = {source.resolve(): source for source, _ in unique}
    claimed: dict[Path, Path] = {}
    for source, destination in unique:
        target = destination.resolve()
        if target in sources:
            raise OutputNotAllowed(f"{destination} would replace the input {sources[target]}: choose another --out")
        if target in claimed:
            raise OutputNotAllowed(
                f"{claimed[target]} and {source} would both be written to {destination}: "
                "anonymize them with separate --out folders"
            )
        claimed[target] = source
    return unique


async def anonymize_files(
    pairs: Sequence[tuple[Path, Path]],
    configuration: UserConfiguration,
    localizer: Localizer,
    settings: Settings,
    *,
    jobs: int,
    report: TextIO,
    progress: bool = True,
) -> BatchSummary:
    """Anonymize every pair, ``jobs`` at a time; one failure never stops the others.
    Writes one JSON line per file to ``report``."""
    summary = BatchSummary()
    slots = asyncio.Semaphore(jobs)
    started = time.perf_counter()
    with tqdm(total=len(pairs), unit="frame", disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:

        async def one(source: Path, destination: Path) -> None:
            async with slots:
                record, counts = await _anonymize_file(source, destination, configuration, localizer, settings)
            if counts is not None:
                summary.done += 1
                summary.counts.update(counts)
            else:
                summary.failed += 1
            report.write(orjson.dumps(record).decode() + "\n")
            report.flush()
            bar.update()

        async with asyncio.TaskGroup() as group:
            for source, destination in pairs:
                group.create_task(one(source, destination))
    summary.seconds = time.perf_counter() - started
    return summary


async def _anonymize_file(
    source: Path, destination: Path, configuration: UserConfiguration, localizer: Localizer, settings: Settings
) -> tuple[dict[str, object], dict[str, int] | None]:
    """The file's JSON-line record, and the counts per label when it succeeded."""
    try:
        data = await asyncio.to_thread(source.read_bytes)
        image = await anonymize_image(data, configuration, localizer, output=settings.output, limits=settings.limits)
        await asyncio.to_thread(write_atomically, destination, image.data)
    except ProcessorError as error:
        return {"source": str(source), "status": "error", "error_kind": error.kind, "error": str(error)}, None
    except OSError as error:
        failure = f"{error.strerror}: {source}"
        return {"source": str(source), "status": "error", "error_kind": "io", "error": failure}, None
    result = image.result
    record: dict[str, object] = {
        "source": str(source),
        "output": str(destination),
        "status": "ok",
        "counts": result.counts,
        "regions": [region.model_dump() for region in result.regions],
        "timings_ms": result.timings_ms,
    }
    return record, result.counts


def write_atomically(destination: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

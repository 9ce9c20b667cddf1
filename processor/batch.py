"""The local CLI's job: anonymize image files and folders, several at a time, with progress and a report."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson
from tqdm import tqdm

from processor.errors import OutputNotAllowed, ProcessorError
from processor.inference.base import Localizer
from processor.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from processor.pipeline import anonymize_image
from processor.pixel_budget import PixelBudget
from processor.settings import Settings
from schemas.config import UserConfiguration

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once, at import, in the main thread: os.umask can only be read by setting it

SKIPPED_SHOWN = 5
"""Skipped files named in the summary line; the JSON lines name them all."""


@dataclass(frozen=True, slots=True)
class MediaKind:
    """What one command takes from folders: file suffixes, the output name of an input, and hints for the rest."""

    noun: str  # "image", "video"
    suffixes: frozenset[str]
    others: Mapping[str, frozenset[str]] = field(default_factory=dict)  # reason -> suffixes, e.g. videos for images
    output_name: Callable[[Path], Path] = lambda relative: relative

    def skip_reason(self, path: Path) -> str:
        suffix = path.suffix.lower()
        return next((reason for reason, suffixes in self.others.items() if suffix in suffixes), f"not {self._a()}")

    def _a(self) -> str:
        return ("an " if self.noun[0] in "aeiou" else "a ") + self.noun


IMAGES = MediaKind("image", IMAGE_SUFFIXES, {"a video: use anonymizer video": VIDEO_SUFFIXES})


@dataclass(frozen=True, slots=True)
class Collected:
    """(source, destination) pairs to do, and the files found but left, each with why."""

    pairs: list[tuple[Path, Path]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def without_done(self) -> Collected:
        """``--skip-existing``: outputs are written whole or not at all, so an existing one is a finished file."""
        done = [(source, "done before (--skip-existing)") for source, destination in self.pairs if destination.exists()]
        left = [(source, destination) for source, destination in self.pairs if not destination.exists()]
        return Collected(left, self.skipped + done)


@dataclass
class BatchSummary:
    done: int = 0
    failed: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    written: bool = True

    def line(self) -> str:
        found = ", ".join(f"{count} {label}" for label, count in sorted(self.counts.items())) or "nothing"
        rate = self.done / self.seconds if self.seconds else 0.0
        failed = f"; {self.failed} failed (see the JSON lines with status 'error')" if self.failed else ""
        verb, hid = ("anonymized", "hid") if self.written else ("looked at (dry run, nothing written)", "found")
        head = f"{verb} {self.done} file(s) in {self.seconds:.1f} s ({rate:.2f} frames/s), {hid} {found}{failed}"
        return head + skipped_line(self.skipped)


def skipped_line(skipped: Sequence[tuple[Path, str]]) -> str:
    """``; skipped 7 file(s): a.gif (not an image), … and 2 more`` (empty when nothing was skipped)."""
    if not skipped:
        return ""
    shown = ", ".join(f"{path} ({reason})" for path, reason in skipped[:SKIPPED_SHOWN])
    more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return f"; skipped {len(skipped)} file(s): {shown}{more}"


def collect_files(paths: Sequence[Path], out_dir: Path, kind: MediaKind = IMAGES) -> Collected:
    """(source, destination) pairs: folders are searched recursively for ``kind``'s files and mirrored under
    ``out_dir`` (``out_dir`` itself skipped when it lies inside one); files named explicitly are taken whatever
    their suffix (a file of another kind then fails with a clear error). Other files of the folders are skipped,
    with the reason.

    Raises :class:`OutputNotAllowed`, before anything is written, when a destination would replace an input or
    two inputs would be written to one destination: the CLI never destroys an input or a result.
    """
    out_resolved = out_dir.resolve()
    pairs: list[tuple[Path, Path]] = []
    skipped: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            folder = path.resolve()
            if folder == out_resolved:
                raise OutputNotAllowed(f"--out {out_dir} is the input folder {path}: the outputs would replace it")
            skip_out = out_resolved.is_relative_to(folder)
            for source in sorted(path.rglob("*")):
                if not source.is_file() or (skip_out and source.resolve().is_relative_to(out_resolved)):
                    continue  # folders, and an earlier run's outputs inside the input folder
                if source.suffix.lower() in kind.suffixes:
                    pairs.append((source, out_dir / kind.output_name(source.relative_to(path))))
                else:
                    skipped.append((source, kind.skip_reason(source)))
        else:
            pairs.append((path, out_dir / kind.output_name(Path(path.name))))
    return Collected(_without_overwrites(pairs), skipped)


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
    write: bool = True,
) -> BatchSummary:
    """Anonymize every pair, ``jobs`` at a time; one failure never stops the others.
    Writes one JSON line per file to ``report``; with ``write`` False (a dry run) no image is written."""
    summary = BatchSummary(written=write)
    slots = asyncio.Semaphore(jobs)
    budget = PixelBudget(settings.limits.max_pixels_in_flight)
    started = time.perf_counter()
    with tqdm(total=len(pairs), unit="frame", disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:

        async def one(source: Path, destination: Path) -> None:
            async with slots:
                record, counts = await _anonymize_file(
                    source, destination if write else None, configuration, localizer, settings, budget
                )
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
    source: Path,
    destination: Path | None,
    configuration: UserConfiguration,
    localizer: Localizer,
    settings: Settings,
    budget: PixelBudget,
) -> tuple[dict[str, object], dict[str, int] | None]:
    """The file's JSON-line record, and the counts per label when it succeeded; ``destination`` None: not written."""
    try:
        data = await asyncio.to_thread(source.read_bytes)
        image = await anonymize_image(
            data, configuration, localizer, output=settings.output, limits=settings.limits, budget=budget
        )
        if destination is not None:
            await asyncio.to_thread(write_atomically, destination, image.data)
    except ProcessorError as error:
        return {"source": str(source), "status": "error", "error_kind": error.kind, "error": str(error)}, None
    except OSError as error:
        failure = f"{error.strerror}: {source}"
        return {"source": str(source), "status": "error", "error_kind": "io", "error": failure}, None
    result = image.result
    record: dict[str, object] = {
        "source": str(source),
        "output": str(destination) if destination is not None else None,
        "status": "ok",
        "counts": result.counts,
        "regions": [region.model_dump() for region in result.regions],
        "timings_ms": result.timings_ms,
    }
    return record, result.counts


def skipped_record(source: Path, reason: str) -> dict[str, object]:
    """The JSON line of a file left out."""
    return {"source": str(source), "status": "skipped", "reason": reason}


def write_atomically(destination: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file; the file gets the usual
    permissions (0666 less the umask), not the temporary file's 0600."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        os.fchmod(descriptor, 0o666 & ~_UMASK)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

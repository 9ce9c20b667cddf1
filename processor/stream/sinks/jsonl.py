"""The embedded default sink: completion events and dead letters as JSON lines in local files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from processor.errors import BrokerUnavailable
from schemas.events import CompletionEvent, DeadLetter


class JsonlSink:
    """The embedded default: completion events as JSON lines in ``completions_file``, dead letters in
    ``<stem>.dead-letter.jsonl`` beside it. Appends, so a rerun adds lines (an event may appear twice)."""

    def __init__(self, completions_file: Path) -> None:
        self.completions_file = completions_file
        self.dead_letter_file = dead_letter_path(completions_file)
        self._completions: IO[bytes] | None = None
        self._dead_letters: IO[bytes] | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        self.completions_file.parent.mkdir(parents=True, exist_ok=True)
        self._completions = self.completions_file.open("ab")
        self._dead_letters = self.dead_letter_file.open("ab")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for handle in (self._completions, self._dead_letters):
            if handle is not None:
                handle.close()
        self._completions = self._dead_letters = None

    async def completed(self, event: CompletionEvent) -> None:
        await self._write(self._completions, event.model_dump_json().encode())

    async def dead_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        await self._write(self._dead_letters, letter.model_dump_json().encode())

    async def flush(self) -> None:
        async with self._lock:
            for handle in (self._completions, self._dead_letters):
                if handle is not None:
                    await asyncio.to_thread(os.fsync, handle.fileno())

    async def _write(self, handle: IO[bytes] | None, line: bytes) -> None:
        if handle is None:
            raise RuntimeError("JsonlSink used outside 'async with'")
        async with self._lock:
            try:
                handle.write(line + b"\n")
                handle.flush()
            except OSError as error:
                raise BrokerUnavailable(f"cannot write {handle.name}: {error.strerror}") from error


def dead_letter_path(completions_file: Path) -> Path:
    """``completions.jsonl`` → ``completions.dead-letter.jsonl``."""
    return completions_file.with_name(f"{completions_file.stem}.dead-letter.jsonl")

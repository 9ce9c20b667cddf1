"""The embedded default's input: a local inbox read once, as the messages a Kafka topic would hold.

A folder of frames gives one FrameEvent per image file (``file://`` source, the relative path as id); a
``.jsonl`` file gives one message per non-empty line, each any event the stream accepts (FrameEvent, S3
notification, CloudEvent), parsed later by the same code as Kafka messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from processor.errors import InvalidEvent
from schemas.events import FrameEvent

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

Message = tuple[bytes | None, bytes]
"""(key, value) of one inbox message."""


def inbox_messages(inbox: Path, exclude: Iterable[Path] = ()) -> list[Message]:
    """Every message of ``inbox``, in a stable order (sorted paths, or line order). Files under ``exclude``
    (e.g. where the outputs go, when that is inside the inbox) are skipped. Raises InvalidEvent when the
    inbox does not exist or is neither a folder nor a ``.jsonl`` file."""
    if inbox.is_dir():
        return frame_messages(inbox, [path.resolve() for path in exclude])
    if inbox.is_file() and inbox.suffix == ".jsonl":
        return [(None, line.strip()) for line in inbox.read_bytes().splitlines() if line.strip()]
    if inbox.exists():
        raise InvalidEvent(f"inbox {inbox} is neither a folder of frames nor a .jsonl file of events")
    raise InvalidEvent(f"inbox {inbox} does not exist (set stream.inbox, or kafka.bootstrap_servers)")


def frame_messages(folder: Path, exclude: list[Path]) -> list[Message]:
    root = folder.resolve()
    messages: list[Message] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if (
            not path.is_file()
            or path.suffix.lower() not in IMAGE_SUFFIXES
            or any(part.startswith(".") for part in relative.parts)
            or any(path.is_relative_to(skipped) for skipped in exclude)
        ):
            continue
        event = FrameEvent(id=relative.as_posix(), source=path.as_uri())
        messages.append((event.id.encode(), event.model_dump_json(exclude_none=True).encode()))
    return messages

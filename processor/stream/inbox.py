"""The embedded default's input: a local inbox read once, as the messages a Kafka topic would hold.

A folder gives one FrameEvent per image or video file (``file://`` source, the relative path as id); a
``.jsonl`` file gives one message per non-empty line, each any event the stream accepts (FrameEvent, S3
notification, CloudEvent), parsed later by the same code as Kafka messages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from processor.errors import InvalidEvent
from processor.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from schemas.events import FrameEvent

Message = tuple[bytes | None, bytes]
"""(key, value) of one inbox message."""


def inbox_messages(inbox: Path, skip: Callable[[str], bool] = lambda url: False) -> list[Message]:
    """Every message of ``inbox``, in a stable order (sorted paths, or line order). Frames whose URL ``skip``
    accepts (the processor's own outputs, when they go inside the inbox) are left out. Raises InvalidEvent
    when the inbox does not exist or is neither a folder nor a ``.jsonl`` file."""
    if inbox.is_dir():
        return frame_messages(inbox, skip)
    if inbox.is_file() and inbox.suffix == ".jsonl":
        return [(None, line.strip()) for line in inbox.read_bytes().splitlines() if line.strip()]
    if inbox.exists():
        raise InvalidEvent(f"inbox {inbox} is neither a folder of frames nor a .jsonl file of events")
    raise InvalidEvent(f"inbox {inbox} does not exist (set stream.inbox, or kafka.bootstrap_servers)")


def frame_messages(folder: Path, skip: Callable[[str], bool]) -> list[Message]:
    """One FrameEvent per image or video file under ``folder`` (hidden files and folders left out)."""
    root = folder.absolute()
    messages: list[Message] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        url = "file://" + path.as_posix()  # the storage takes file paths verbatim, not percent-encoded
        if (
            not path.is_file()
            or path.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            or any(part.startswith(".") for part in relative.parts)
            or skip(url)
        ):
            continue
        event = FrameEvent(id=relative.as_posix(), source=url)
        messages.append((event.id.encode(), event.model_dump_json(exclude_none=True).encode()))
    return messages

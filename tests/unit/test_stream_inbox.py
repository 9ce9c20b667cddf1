"""The embedded inbox: a folder of frames or a .jsonl of events, read as the messages a topic would hold."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from processor.errors import InvalidEvent
from processor.stream.inbox import inbox_messages
from processor.stream.messages import parse_message


def test_a_folder_gives_one_frame_event_per_image_or_video_in_path_order(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.PNG", "sub dir/c.jpeg", "notes.txt", ".hidden/d.jpg", "done/e.jpg", "clip.MP4"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")

    messages = inbox_messages(tmp_path, skip=lambda url: "/done/" in url)

    events = [event for _, value in messages for event in parse_message(value, [])]
    assert [event.id for event in events] == ["a.PNG", "b.jpg", "clip.MP4", "sub dir/c.jpeg"]
    assert events[3].source == f"file://{tmp_path.absolute().as_posix()}/sub dir/c.jpeg"  # verbatim, not %-encoded
    assert [key for key, _ in messages] == [b"a.PNG", b"b.jpg", b"clip.MP4", b"sub dir/c.jpeg"]


def test_a_jsonl_file_gives_one_message_per_line_of_any_event_kind(tmp_path: Path) -> None:
    inbox = tmp_path / "events.jsonl"
    lines = [
        orjson.dumps({"id": "1", "source": "s3://b/k.jpg"}),
        b"",
        orjson.dumps(
            {
                "Records": [
                    {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "x+y.jpg"}}}
                ]
            }
        ),
        b"not json",
    ]
    inbox.write_bytes(b"\n".join(lines) + b"\n")

    messages = inbox_messages(inbox)

    assert [value for _, value in messages] == [lines[0], lines[2], b"not json"]
    assert parse_message(messages[1][1], [])[0].source == "s3://b/x y.jpg"


@pytest.mark.parametrize("name", ["missing", "events.json"])
def test_anything_else_is_refused_with_the_reason(tmp_path: Path, name: str) -> None:
    if name.endswith(".json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(InvalidEvent, match="inbox"):
        inbox_messages(tmp_path / name)

"""What `replay` publishes for a dead letter: the one event of the original message that failed, or nothing."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from processor import __version__
from processor.errors import error_kinds
from processor.stream.replay import Selection, Skip, _examine, _letter
from schemas.events import DeadLetter


def letter(payload: bytes | None, event_id: str | None, headers: Sequence[tuple[str, bytes]] = ()) -> DeadLetter:
    return DeadLetter(
        event_id=event_id,
        error_kind="object_not_found",
        error_message="…",
        attempts=1,
        source_topic="frames",
        source_partition=0,
        source_offset=7,
        headers=DeadLetter.encode_headers(headers),
        payload_base64=DeadLetter.encode_payload(payload),
        failed_at=datetime(2026, 12, 1, tzinfo=UTC),
        processor_version=__version__,
    )


def never(_letter: DeadLetter) -> bool:
    return False


def test_a_notification_replays_only_the_record_that_failed() -> None:
    records = [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "frames"}, "object": {"key": key, "eTag": "e"}}}
        for key in ("cam7/1.jpg", "cam7/2.jpg")
    ]
    candidate = _examine(letter(orjson.dumps({"Records": records}), "frames/cam7/2.jpg@e"), Selection(), never)
    assert candidate.skip is None and candidate.event is not None
    assert (candidate.event.id, candidate.event.source) == ("frames/cam7/2.jpg@e", "s3://frames/cam7/2.jpg")


def test_a_binary_cloud_event_is_read_with_its_original_headers() -> None:
    headers = [("ce_specversion", b"1.0"), ("ce_type", b"frame"), ("ce_source", b"cam7"), ("ce_id", b"ce-1")]
    body = orjson.dumps({"source": "s3://frames/cam7/1.jpg"})
    candidate = _examine(letter(body, "ce-1", headers), Selection(), never)
    assert candidate.event is not None and candidate.event.id == "ce-1"


def test_letters_with_nothing_to_replay_are_skipped_not_published() -> None:
    frame = orjson.dumps({"id": "e-1", "source": "s3://frames/a.jpg"})
    assert _examine(letter(b"{broken", None), Selection(), never).skip is Skip.not_replayable
    assert _examine(letter(None, "e-1"), Selection(), never).skip is Skip.not_replayable, "payload dropped for size"
    assert _examine(letter(frame, "e-2"), Selection(), never).skip is Skip.not_replayable, "not the failed event"
    assert _examine(_letter(b"[1, 2]"), Selection(), never).skip is Skip.unparsable
    edited = letter(frame, "e-1").model_copy(update={"payload_base64": base64.b64encode(frame).decode()[:-3]})
    assert _examine(edited, Selection(), never).skip is Skip.not_replayable


def test_the_filters_in_order_kind_then_replayed_then_time() -> None:
    item = letter(orjson.dumps({"id": "e-1", "source": "s3://frames/a.jpg"}), "e-1")
    assert _examine(item, Selection(frozenset({"storage_unavailable"})), lambda _: True).skip is Skip.kind
    assert _examine(item, Selection(), lambda _: True).skip is Skip.already_replayed
    assert _examine(item, Selection(since=datetime(2026, 12, 2, tzinfo=UTC)), never).skip is Skip.before_since
    assert _examine(item, Selection(until=datetime(2026, 11, 30, tzinfo=UTC)), never).skip is Skip.after_until
    assert _examine(item, Selection(frozenset({"object_not_found"})), never).skip is None


def test_every_kind_of_the_taxonomy_is_a_kind_to_filter_by() -> None:
    assert {"object_not_found", "storage_unavailable", "internal", "image_too_complex"} <= error_kinds()
